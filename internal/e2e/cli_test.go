package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCLIAgainstRealServer(t *testing.T) {
	in, _ := sharedServer(t)

	code, out, errs := aegisCLI(t, in, "keys", "create", "cli-key")
	key := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(key, "aegis_") || strings.Contains(key, " ") {
		t.Fatalf("keys create: exit %d out %q err %q", code, out, errs)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("x")); st != 200 {
		t.Fatalf("new key refused: %d", st)
	}
	if code, _, errs := aegisCLI(t, in, "keys", "create", "cli-key"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("duplicate key: exit %d %q", code, errs)
	}
	code, out, _ = aegisCLI(t, in, "keys", "list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"cli-key"`) || strings.Contains(out, key) {
		t.Errorf("keys list: %d %s", code, out)
	}
	if code, _, errs := aegisCLI(t, in, "keys", "revoke", "cli-key"); code != 0 {
		t.Fatalf("keys revoke: %d %s", code, errs)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("x")); st != 401 {
		t.Errorf("revoked key still accepted: %d", st)
	}
	if code, _, _ := aegisCLI(t, in, "keys", "revoke", "no-such-key"); code != 1 {
		t.Errorf("revoking an unknown key: exit %d", code)
	}

	code, out, errs = aegisCLI(t, in, "invoke", "probe", "probe", "-d", "ping")
	if code != 0 || out != "ping" {
		t.Errorf("invoke: %d %q %s", code, out, errs)
	}
	code, out, _ = aegisCLI(t, in, "routes", "-o", "json")
	var routes []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &routes) != nil || len(routes) == 0 {
		t.Errorf("routes -o json: %d %s", code, out)
	}
	// The invocation record of the invoke above is written in the background.
	eventually(t, 5*time.Second, "aegis logs to show the invocation", func() bool {
		code, out, _ := aegisCLI(t, in, "logs", "--app", "probe")
		if code != 0 {
			t.Fatalf("logs: exit %d", code)
		}
		return strings.Contains(out, "invocation")
	})
	if code, _, _ := aegisCLI(t, in, "dlq", "list", "-o", "json"); code != 0 {
		t.Errorf("dlq list: %d", code)
	}
	if code, _, errs := aegisCLI(t, in, "rollback", "no-such-app"); code != 1 || errs == "" {
		t.Errorf("rollback of an unknown app: %d %q", code, errs)
	}
	if code, _, _ := aegisCLI(t, in, "deploy", "-f", "testdata/does-not-exist.yaml"); code == 0 {
		t.Errorf("deploy of a missing manifest succeeded")
	}
}
