package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/client"
)

// historyApp runs the prebuilt probe (a .wasm source, so the CLI's build
// step only hashes it) on one route under path.
func historyApp(path string) string {
	return `app: history
functions:
  probe:
    source: probe.wasm
    triggers:
      - http: { method: POST, path: "` + path + `" }
`
}

// TestDeployHistoryThroughCLI: a deploy of what is active says so and
// records nothing; versions lists what was recorded; rollback --to goes to
// any of them, and to the active one changes nothing.
func TestDeployHistoryThroughCLI(t *testing.T) {
	in, key := sharedServer(t)
	dir := t.TempDir()
	wasm := probeModule(t)
	if err := os.WriteFile(filepath.Join(dir, "probe.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "aegis.yaml")
	deploy := func(path, want string) {
		t.Helper()
		if err := os.WriteFile(manifest, []byte(historyApp(path)), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := aegisCLI(t, in, "deploy", "-f", manifest)
		if code != 0 || out != want {
			t.Fatalf("deploy %s: exit %d, stdout %q, stderr %q; want stdout %q", path, code, out, errs, want)
		}
	}
	deploy("/history/{op}", "deployed history v1\n")
	deploy("/history/{op}", "unchanged: history v1 is already active\n")
	deploy("/history/v2/{op}", "deployed history v2\n")
	deploy("/history/v3/{op}", "deployed history v3\n")

	code, out, errs := aegisCLI(t, in, "versions", "history", "-o", "json")
	var vers []client.Version
	if code != 0 || json.Unmarshal([]byte(out), &vers) != nil {
		t.Fatalf("versions -o json: exit %d %q %q", code, out, errs)
	}
	sum := sha256.Sum256(wasm)
	if len(vers) != 3 || vers[0].Version != "v1" || vers[2].Number != 3 || !vers[2].Active || vers[0].Active ||
		vers[1].Modules["probe"] != hex.EncodeToString(sum[:]) || vers[0].CreatedAt.IsZero() {
		t.Fatalf("versions: %+v", vers)
	}
	code, out, _ = aegisCLI(t, in, "versions", "history")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 4 ||
		!strings.HasPrefix(lines[3], "v3") || !strings.Contains(lines[3], "*") || strings.Contains(lines[1], "*") {
		t.Errorf("versions table: exit %d\n%s", code, out)
	}

	code, out, errs = aegisCLI(t, in, "rollback", "history", "--to", "v1")
	if code != 0 || out != "history rolled back to v1\n" {
		t.Fatalf("rollback --to v1: exit %d %q %q", code, out, errs)
	}
	if st, body, _ := call(t, in.gateway, "POST", "/history/echo", key, []byte("one")); st != 200 || string(body) != "one" {
		t.Errorf("v1's route after rollback --to v1: %d %s", st, body)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/history/v3/echo", key, []byte("x")); st != 404 {
		t.Errorf("v3's route after rollback --to v1: %d, want 404", st)
	}
	code, out, _ = aegisCLI(t, in, "rollback", "history", "--to", "1")
	if code != 0 || out != "unchanged: history v1 is already active\n" {
		t.Errorf("rollback --to the active version: exit %d %q", code, out)
	}
	code, _, errs = aegisCLI(t, in, "rollback", "history", "--to", "v9")
	if code != 1 || !strings.Contains(errs, `rollback history: app "history" has no version v9 (HTTP 404`) {
		t.Errorf("rollback --to a version that does not exist: exit %d %q", code, errs)
	}
	code, _, errs = aegisCLI(t, in, "versions", "no-such-app")
	if code != 1 || !strings.Contains(errs, "app not found (HTTP 404") {
		t.Errorf("versions of an unknown app: exit %d %q", code, errs)
	}
	if code, out, _ := aegisCLI(t, in, "rollback", "history", "--to", "v3"); code != 0 || out != "history rolled back to v3\n" {
		t.Errorf("rollback --to v3, forward again: exit %d %q", code, out)
	}
}

// TestDeployErrorsPointAtTheCause: what a user gets wrong in a manifest
// is reported at its line, and a route another app holds names that app,
// once.
func TestDeployErrorsPointAtTheCause(t *testing.T) {
	in, _ := sharedServer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe.wasm"), probeModule(t), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, manifest, want string
	}{
		{"route held by another app", `app: clash
functions:
  probe:
    source: probe.wasm
    triggers:
      - http: { method: POST, path: "/probe/{x}" }
`, `aegis: deploy clash: route POST /probe/{x} of function "probe" is already served by app "probe" (function "probe", POST /probe/{op}) (HTTP 409`},
		{"missing source directory", `app: clash
functions:
  probe:
    source: probe.wasm
  other:
    # built from a directory that is not there
    source: ./functions/other
`, `aegis: build other: ` + filepath.Join(dir, "aegis.yaml") + `:7: functions.other.source: source directory ./functions/other does not exist`},
		{"missing schema file", `app: clash
functions:
  probe:
    source: probe.wasm
    triggers:
      - http: { method: GET, path: /clash }
      - event: { topic: clash.happened, schema: schemas/clash.json }
`, `aegis: deploy clash: ` + filepath.Join(dir, "aegis.yaml") + `:7: functions.probe.triggers[1].event.schema: schema file schemas/clash.json: not found in `},
		{"indentation", `app: clash
functions:
  probe:
    source: probe.wasm
   triggers:
      - http: { method: GET, path: /clash }
`, `aegis: ` + filepath.Join(dir, "aegis.yaml") + `:5: did not find expected key; check the indentation of this line`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "aegis.yaml")
			if err := os.WriteFile(p, []byte(tt.manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := aegisCLI(t, in, "deploy", "-f", p)
			// Progress lines come first on stderr; the error is the line
			// starting "aegis: ".
			_, msg, _ := strings.Cut(errs, "aegis: ")
			msg = "aegis: " + msg
			if code != 1 || !strings.HasPrefix(msg, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr\n%s\nwant an error starting\n%s", code, out, errs, tt.want)
			}
			if strings.Count(msg, "deploy clash:") > 1 || strings.Count(msg, `app "probe"`) > 1 {
				t.Errorf("the error repeats itself: %s", msg)
			}
		})
	}
}
