package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/cli"
)

// awsStyleKey is an access key id of the shape AWS issues, random each
// run (never AWS's documented example, which detectors allow).
func awsStyleKey(t *testing.T) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AKIA" + string(b)
}

// gateApp writes an app whose one function is the prebuilt probe module
// (nothing to compile) and whose manifest holds extra text, and returns
// its directory.
func gateApp(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe.wasm"), probeModule(t), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := `app: gated
functions:
  probe:
    source: ./probe.wasm
    triggers:
      - http: { method: POST, path: "/gated/{op}" }
    limits: { timeout: 2s }
` + extra
	if err := os.WriteFile(filepath.Join(dir, "aegis.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The deploy gate, end to end: a key written into a manifest is found by
// aegis scan (file, line, never the value) and stops aegis deploy before
// anything is sent; a client that skips its own check is refused by the
// server's gate; --accept with a reason lets it through and the audit log
// records who accepted what and why.
func TestDeployGate(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	key := awsStyleKey(t)
	dir := gateApp(t, "# the old deploy script's credentials: aws_access_key_id = "+key+"\n")

	// aegis scan: the finding, in JSON, exit 1 at the default level.
	code, out, errs := aegisCLI(t, in, "scan", dir, "-o", "json")
	if code != 1 {
		t.Fatalf("aegis scan: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	var findings []map[string]any
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("aegis scan -o json: %v\n%s", err, out)
	}
	var secretID string
	for _, f := range findings {
		if strings.HasPrefix(f["rule"].(string), "secret") {
			secretID = f["id"].(string)
			if f["file"] != "aegis.yaml" || f["line"] != float64(8) || f["severity"] != "critical" {
				t.Errorf("the secret's finding: %v", f)
			}
		}
	}
	if secretID == "" {
		t.Fatalf("no secret found in:\n%s", out)
	}
	for _, o := range []string{out, errs} {
		if strings.Contains(o, key) || strings.Contains(o, key[4:12]) {
			t.Fatal("the scan printed the key")
		}
	}
	if code, _, errs := aegisCLI(t, in, "scan", dir, "--fail-on", "none"); code != 0 {
		t.Errorf("aegis scan --fail-on none: exit %d\n%s", code, errs)
	}
	if code, _, errs := aegisCLI(t, in, "scan", dir, "--fail-on", "severe"); code != 2 {
		t.Errorf("aegis scan --fail-on severe: exit %d, want 2 (usage)\n%s", code, errs)
	}
	code, out, _ = aegisCLI(t, in, "scan", dir, "-o", "sarif", "--fail-on", "none")
	if code != 0 || !strings.Contains(out, `"version": "2.1.0"`) || !strings.Contains(out, secretID) {
		t.Errorf("aegis scan -o sarif: exit %d\n%s", code, out)
	}

	// aegis deploy: refused by the client's gate, nothing sent.
	code, _, errs = aegisCLI(t, in, "deploy", dir)
	if code != 1 || !strings.Contains(errs, "deploy refused: 1 findings at or above critical") || !strings.Contains(errs, secretID) {
		t.Fatalf("aegis deploy with a key in the manifest: exit %d\n%s", code, errs)
	}
	if strings.Contains(errs, key) {
		t.Fatal("the deploy printed the key")
	}
	if st, _, _ := call(t, in.gateway, "POST", "/gated/echo", "", nil); st != 404 {
		t.Fatalf("the refused app answers %d", st)
	}

	// A client that skips its own gate (--fail-on none) meets the server's.
	code, _, errs = aegisCLI(t, in, "deploy", dir, "--fail-on", "none")
	if code != 1 || !strings.Contains(errs, "deploy refused by the gate") || !strings.Contains(errs, secretID) {
		t.Fatalf("deploy past the client's gate: exit %d\n%s", code, errs)
	}
	if strings.Contains(errs, key) {
		t.Fatal("the server's refusal quoted the key")
	}
	if st, _, _ := call(t, in.gateway, "POST", "/gated/echo", "", nil); st != 404 {
		t.Fatalf("the app refused by the server answers %d", st)
	}

	// Accepted, with a reason: deployed, and recorded.
	code, out, errs = aegisCLI(t, in, "deploy", dir, "--accept", secretID, "--reason", "a revoked key kept in a comment", "-o", "json")
	if code != 0 {
		t.Fatalf("deploy with the finding accepted: exit %d\n%s", code, errs)
	}
	var res client.DeployResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	accepted := false
	for _, f := range res.Findings {
		if f.ID == secretID && f.Accepted != nil && f.Accepted.Reason == "a revoked key kept in a comment" {
			accepted = true
		}
	}
	if !accepted {
		t.Errorf("the deploy's answer does not carry the accepted finding: %+v", res.Findings)
	}
	recs, err := in.admin.Audit(context.Background(), client.AuditQuery{Since: time.Hour, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	recorded := false
	for _, r := range recs {
		if r.Action == "deploy" && r.Outcome == "ok" && strings.Contains(r.Detail["gate_accepted"], secretID+" (a revoked key kept in a comment)") {
			recorded = true
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), key) {
			t.Errorf("an audit record holds the key: %s", b)
		}
	}
	if !recorded {
		t.Error("no audit record of the deploy names the accepted finding and its reason")
	}

	// Usage errors: a reason without --accept, an --accept without one.
	if code, _, errs := aegisCLI(t, in, "deploy", dir, "--accept", secretID); code != 2 {
		t.Errorf("--accept without --reason: exit %d\n%s", code, errs)
	}
}

// The travel diary passes the gate: no rule fires on it, and no secret is
// in its sources, manifest or schema files.
func TestTravelDiaryPassesTheGate(t *testing.T) {
	var out, errs bytes.Buffer
	code := cli.Run(context.Background(), []string{"scan", "../../examples/travel-diary", "-o", "json", "--fail-on", "info"},
		strings.NewReader(""), &out, &errs, func(string) string { return "" })
	if code != 0 || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("aegis scan examples/travel-diary: exit %d\n%s\n%s", code, out.String(), errs.String())
	}
}
