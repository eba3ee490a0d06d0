package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/otlptest"
)

// No secret or key value appears in any log line, metric label, exported
// span or audit record: an API key used and one guessed, the root admin
// token and one created, a webhook secret, the header the span exporter
// sends, and a value a function wrote, are all looked for in the server's
// log, the function log, the metrics, the spans a collector received and
// the audit export, after every one of them has been used.
func TestNoSecretInTelemetry(t *testing.T) {
	recv := otlptest.Start(t)
	const exporterToken = "Bearer collector-token-5f1e2d"
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.OTLP = otlp.Config{Endpoint: recv.TracesURL(), Headers: map[string]string{"Authorization": exporterToken},
			BatchTimeout: 50 * time.Millisecond}
	})
	defer in.close(t)
	ctx := context.Background()
	deployProbe(t, in, "testdata/probe.yaml")
	key, err := in.admin.CreateKey(ctx, "secrets-probe")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := in.admin.CreateAdminToken(ctx, "secrets-viewer", "viewer", nil)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := in.admin.CreateWebhookSecret(ctx, "probe", "secrets-hook")
	if err != nil {
		t.Fatal(err)
	}
	const appSecret = "app-secret-value-71d3a0c5"
	if _, err := in.admin.SetSecret(ctx, "probe", "partner-token", []byte(appSecret)); err != nil {
		t.Fatal(err)
	}
	// The keys the server holds, as their files hold them: the audit
	// signing key's seed and the vault's master key.
	fileText := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(b)); len(s) >= 16 {
			return s
		}
		t.Fatalf("%s holds too little to search for", path)
		return ""
	}
	auditSeed := fileText(filepath.Join(in.dataDir, "keys", "audit.key"))
	masterKey := fileText(filepath.Join(testConfigDir(t), "aegis", "master.key"))
	// A guessed key that shares the real one's prefix, and a wrong admin
	// token: what a brute force sends is as secret as what it guesses.
	guessed := key.Key[:len(key.Key)-6] + "zzzzzz"
	const value = "value-the-function-wrote-9c2b"
	traceID := "6bf92f3577b34da6a3ce929d0e0e4736"
	for _, k := range []string{key.Key, guessed} {
		call(t, in.gateway, "POST", "/probe/kv-put", k, map[string]string{"table": "allowed", "key": "k", "value": value},
			"Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		call(t, in.gateway, "POST", "/probe/kv-get", k, map[string]string{"table": "forbidden", "key": "k"})
	}
	if _, err := client.New(in.srv.AdminURL(), "aegisadm_not-a-real-token-3e4f").Apps(ctx); err == nil {
		t.Fatal("a wrong admin token was accepted")
	}
	if st, _ := scrape(t, in, tok.Token); st != 200 {
		t.Fatalf("scrape with the viewer token: %d", st)
	}
	recv.WaitTrace(t, traceID, 3, 20*time.Second)

	secrets := map[string]string{
		"API key": key.Key, "guessed API key": guessed, "root admin token": in.srv.AdminToken(),
		"created admin token": tok.Token, "wrong admin token": "aegisadm_not-a-real-token-3e4f",
		"webhook secret": hook.Secret, "exporter header": "collector-token-5f1e2d", "written value": value,
		"app secret": appSecret, "audit signing key": auditSeed, "master key": masterKey,
	}
	places := map[string]string{"server log": in.logs.String()}

	var fl strings.Builder
	if err := in.admin.Logs(ctx, client.LogQuery{Limit: 10000}, func(r client.LogRecord) error {
		fmt.Fprintf(&fl, "%+v\n", r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	places["function log"] = fl.String()

	_, samples := scrape(t, in, in.srv.AdminToken())
	var m strings.Builder
	for series := range samples {
		m.WriteString(series + "\n")
	}
	places["metrics"] = m.String()

	var sp strings.Builder
	for _, s := range recv.Spans() {
		fmt.Fprintf(&sp, "%s %s %v %v\n", s.Name, s.StatusMessage, s.Attrs, s.Resource)
	}
	places["spans"] = sp.String()

	var export bytes.Buffer
	if err := in.admin.AuditExport(ctx, &export); err != nil {
		t.Fatal(err)
	}
	places["audit export"] = export.String()

	for where, text := range places {
		if len(text) < 100 {
			t.Errorf("%s is nearly empty (%d bytes): the search below would prove nothing", where, len(text))
		}
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in the %s", what, where)
			}
		}
	}
	// The search can find what it looks for: the key's name and the
	// admin token's name are in the audit, the denied table in the spans.
	if !strings.Contains(places["audit export"], "secrets-probe") || !strings.Contains(places["spans"], "forbidden") {
		t.Error("the records do not name what they are about")
	}
}
