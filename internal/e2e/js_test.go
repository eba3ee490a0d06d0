package e2e

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jsFunctionDir copies a JavaScript function's directory into a temporary
// one with the test command's componentize-js install linked in as its
// node_modules, so building it needs no network and writes nothing into
// the source tree.
func jsFunctionDir(t *testing.T, src string) string {
	t.Helper()
	modules := os.Getenv("AEGIS_JS_MODULES")
	if modules == "" {
		if os.Getenv("AEGIS_REQUIRE_JS") != "" {
			t.Fatal("AEGIS_JS_MODULES is not set: scripts/test.sh installs componentize-js and sets it")
		}
		t.Skip("AEGIS_JS_MODULES is not set (scripts/test.sh installs componentize-js and sets it)")
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue // node_modules, .aegis: never copied
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(modules, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestJSComponent: the JavaScript example, a wasi:http component built by
// aegis deploy with componentize-js, answers through the gateway with
// authentication on, keeps its counts through the aegis:platform kv
// interface, and is refused egress its grants do not name (the test's
// dialer fails the test if anything is dialed). The same component with
// an egress grant to a private address is stopped by the egress filter,
// and one importing an interface Aegis does not provide is refused at
// deploy, named.
func TestJSComponent(t *testing.T) {
	in, key := sharedServer(t)
	defer in.egress.check(t)
	dir := jsFunctionDir(t, "../../examples/hello-js")
	if code, out, errs := aegisCLI(t, in, "deploy", "-f", filepath.Join(dir, "aegis.yaml")); code != 0 {
		t.Fatalf("aegis deploy hello-js: exit %d\n%s%s", code, out, errs)
	}
	for i := 1; i <= 2; i++ {
		st, body, _ := call(t, in.gateway, "GET", "/js/hello/ada", key, nil)
		var got struct {
			Message string `json:"message"`
			Visits  int    `json:"visits"`
		}
		if st != 200 || json.Unmarshal(body, &got) != nil || got.Message != "hello, ada" || got.Visits != i {
			t.Fatalf("GET /hello/ada #%d: %d %s", i, st, body)
		}
	}
	if st, _, _ := call(t, in.gateway, "GET", "/js/hello/ada", "", nil); st != 401 {
		t.Errorf("without a key: %d, want 401", st)
	}
	// No egress grant: refused before anything is dialed.
	st, body, _ := call(t, in.gateway, "GET", "/js/fetch?url="+url.QueryEscape("https://local.example.test/"), key, nil)
	if st != 502 {
		t.Errorf("fetch without an egress grant: %d %s, want 502", st, body)
	}

	// The component aegis deploy built, deployed again as a prebuilt
	// module under other manifests.
	built := builtModule(t, dir)
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "hello.wasm"), built, 0o644); err != nil {
		t.Fatal(err)
	}
	// A new version of the app, the same code with an egress grant to
	// hosts that resolve to a private and a metadata address.
	manifest := `app: hello-js
functions:
  hello:
    source: hello.wasm
    triggers:
      - http: { method: GET, path: "/js/hello/{name}", auth: [api-key] }
      - http: { method: GET, path: "/js/fetch", auth: [api-key] }
    grants:
      kv: { read: [visits], write: [visits] }
      egress: { hosts: [private.example.test, meta.example.test] }
    limits: { timeout: 5s, memory: 128MiB }
`
	writeText(t, filepath.Join(app, "aegis.yaml"), manifest)
	if code, out, errs := aegisCLI(t, in, "deploy", "-f", filepath.Join(app, "aegis.yaml")); code != 0 {
		t.Fatalf("deploy with an egress grant: exit %d\n%s%s", code, out, errs)
	}
	for _, target := range []string{"https://private.example.test/", "http://meta.example.test/latest/meta-data/"} {
		st, body, _ := call(t, in.gateway, "GET", "/js/fetch?url="+url.QueryEscape(target), key, nil)
		if st != 502 {
			t.Errorf("fetch %s, granted but not a public address: %d %s, want 502", target, st, body)
		}
	}

	// The same component importing an interface nobody provides.
	unknown := bytes.ReplaceAll(built, []byte("aegis:platform/log@0.1.0"), []byte("acmeco:storage/bus@0.1.0"))
	if bytes.Equal(unknown, built) {
		t.Fatal("the component does not import aegis:platform/log")
	}
	if err := os.WriteFile(filepath.Join(app, "hello.wasm"), unknown, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := aegisCLI(t, in, "deploy", "-f", filepath.Join(app, "aegis.yaml"))
	if code == 0 || !strings.Contains(out+errs, "acmeco:storage/bus@0.1.0") {
		t.Errorf("deploy of a component importing acmeco:storage/bus: exit %d\n%s%s", code, out, errs)
	}
	// The version before it still serves.
	if st, body, _ := call(t, in.gateway, "GET", "/js/hello/grace", key, nil); st != 200 {
		t.Errorf("after the refused deploy: %d %s", st, body)
	}
}

// builtModule is the one module aegis build left under dir's .aegis.
func builtModule(t *testing.T, dir string) []byte {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(filepath.Join(dir, ".aegis"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".wasm") {
			found = append(found, path)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("built modules under %s/.aegis: %v", dir, found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
