package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/server"
)

// memVault is the smallest vault the secret host call can read: this
// test is about grants and scrubbing, not about how secrets are kept.
type memVault struct {
	mu sync.Mutex
	m  map[string]string // "app/name" → value
}

func (v *memVault) Read(_ context.Context, app, name string) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[app+"/"+name]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s: %w", app, name, aegis.ErrNotFound)
	}
	return []byte(s), nil
}

// TestSecretsInFunctions: a function granted a secret reads its value; one
// without the grant is refused, with the denial in its log; a function
// that logs its secret (as it is, in base64 and in hex) and fails quoting
// it leaves no trace of it in `aegis logs`, in its error message, or in
// the server's log.
func TestSecretsInFunctions(t *testing.T) {
	// '+' and '/' in its base64 forms and a length that pads, so every
	// encoding differs.
	const value = "whk_5f2b9c+e1/a7d3?>"
	vault := &memVault{m: map[string]string{"vaulted/WEBHOOK_TOKEN": value}}
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Secrets = vault })
	defer in.close(t)
	deployProbe(t, in, "testdata/secrets.yaml")
	k, err := in.admin.CreateKey(context.Background(), "secrets-e2e")
	if err != nil {
		t.Fatal(err)
	}
	key := k.Key

	o, read := probe(t, in.gateway, key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"})
	if !o.OK || o.Value != value {
		t.Fatalf("granted read: %+v", o)
	}
	if o, _ := probe(t, in.gateway, key, "reader", "secret", map[string]any{"key": "NOT_SET"}); o.OK || !strings.Contains(o.Error, "not found") {
		t.Errorf("granted read of a secret not set: %+v", o)
	}
	o, denied := probe(t, in.gateway, key, "stranger", "secret", map[string]any{"key": "WEBHOOK_TOKEN"})
	if !o.Denied || o.Value != "" || !strings.Contains(o.Error, `secret "WEBHOOK_TOKEN" not granted`) {
		t.Fatalf("ungranted read: %+v", o)
	}

	// A failure quoting the value: the function's message is scrubbed
	// where `aegis invoke` shows it.
	res, err := in.admin.Invoke(context.Background(), "vaulted", "reader", []byte(`{"op":"secret-panic","key":"WEBHOOK_TOKEN"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusInternalServerError || !strings.Contains(res.FunctionError, "probe could not use [secret WEBHOOK_TOKEN]") {
		t.Errorf("invoke of a panic quoting the secret: %d %q", res.Status, res.FunctionError)
	}

	forms := map[string]string{
		"plain":  value,
		"base64": base64.StdEncoding.EncodeToString([]byte(value)),
		"rawurl": base64.RawURLEncoding.EncodeToString([]byte(value)),
		"hex":    hex.EncodeToString([]byte(value)),
		"HEX":    strings.ToUpper(hex.EncodeToString([]byte(value))),
	}
	var out string
	eventually(t, 5*time.Second, "aegis logs to show the reads and the denial", func() bool {
		code, o, errs := aegisCLI(t, in, "logs", "--app", "vaulted", "--limit", "1000")
		if code != 0 {
			t.Fatalf("aegis logs: exit %d: %s", code, errs)
		}
		out = o
		return lineWith(out, "probe read secret [secret WEBHOOK_TOKEN]", "request_id="+read) != "" &&
			lineWith(out, "probe printed secret [secret WEBHOOK_TOKEN] [secret WEBHOOK_TOKEN]") != "" &&
			lineWith(out, "probe hex secret [secret WEBHOOK_TOKEN] [secret WEBHOOK_TOKEN]") != "" &&
			lineWith(out, "vaulted/stranger capability denied capability=secrets.get resource=WEBHOOK_TOKEN", "request_id="+denied) != "" &&
			lineWith(out, "probe could not use [secret WEBHOOK_TOKEN]") != ""
	})
	for name, f := range forms {
		if strings.Contains(out, f) {
			t.Errorf("aegis logs shows the secret (%s form):\n%s", name, out)
		}
		if strings.Contains(in.logs.String(), f) {
			t.Errorf("the server log holds the secret (%s form)", name)
		}
	}
}
