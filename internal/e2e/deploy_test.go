package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// importsUnknownHostFunction is a minimal module that imports aegis.nope,
// which Aegis does not provide, and exports _start.
var importsUnknownHostFunction = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x02, 0x0e, 0x01, 0x05, 'a', 'e', 'g', 'i', 's', 0x04, 'n', 'o', 'p', 'e', 0x00, 0x00, // import aegis.nope
	0x03, 0x02, 0x01, 0x00, // function section: one func of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01, // export _start = func 1
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
}

func writeManifest(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "aegis.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const versionedApp = `app: versioned
functions:
  hello:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/versioned/{op}" }
`

func TestDeployRefusalsKeepTheActiveVersion(t *testing.T) {
	in, key := sharedServer(t)
	v1 := deployProbe(t, in, writeManifest(t, versionedApp))
	serving := func() {
		t.Helper()
		if st, body, _ := call(t, in.gateway, "POST", "/versioned/echo", key, []byte("hi")); st != 200 || string(body) != "hi" {
			t.Fatalf("active version stopped serving: %d %s", st, body)
		}
	}
	serving()

	// A module importing a host function we do not provide.
	_, err := deployWith(in, writeManifest(t, versionedApp), importsUnknownHostFunction)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(apiErr.Message, `"nope"`) {
		t.Fatalf("unknown import: %v", err)
	}
	serving()

	// Bytes that are not wasm at all.
	_, err = deployWith(in, writeManifest(t, versionedApp), []byte("not a module"))
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(apiErr.Message, "not a WebAssembly binary") {
		t.Fatalf("garbage module: %v", err)
	}
	serving()

	// A bad manifest names file, line and field.
	bad := strings.Replace(versionedApp, `path: "/versioned/{op}"`, `path: "/versioned/{op}", scheam: x`, 1)
	_, err = deployWith(in, writeManifest(t, bad), probeModule(t))
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest ||
		!strings.Contains(apiErr.Message, "aegis.yaml:6") || !strings.Contains(apiErr.Message, "scheam") {
		t.Fatalf("bad manifest: %v", err)
	}
	serving()

	// A route another app already owns.
	clash := strings.Replace(versionedApp, "/versioned/{op}", "/probe/{x}", 1)
	_, err = deployWith(in, writeManifest(t, clash), probeModule(t))
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("route conflict: %v", err)
	}
	serving()

	// A second version, then a rollback to the first.
	v2src := strings.Replace(versionedApp, "/versioned/{op}", "/versioned/v2/{op}", 1)
	v2 := deployProbe(t, in, writeManifest(t, v2src))
	if v2.Version == v1.Version {
		t.Fatalf("second deploy kept version %s", v2.Version)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/versioned/v2/echo", key, []byte("x")); st != 200 {
		t.Fatalf("v2 route: %d", st)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/versioned/echo", key, []byte("x")); st != 404 {
		t.Fatalf("v1 route still served after v2: %d", st)
	}
	rb, err := in.admin.Rollback(context.Background(), "versioned")
	if err != nil {
		t.Fatal(err)
	}
	if rb.Version != v1.Version {
		t.Errorf("rolled back to %s, want %s", rb.Version, v1.Version)
	}
	serving()
	if _, err := in.admin.Rollback(context.Background(), "versioned"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("rollback past the first version: %v", err)
	}
}

func TestCFunction(t *testing.T) {
	in, key := sharedServer(t)
	wasm := wasmbuild.CReactor(t, "../../examples/hello-c/hello.c")
	if _, err := deployWith(in, "../../examples/hello-c/aegis.yaml", wasm); err != nil {
		t.Fatalf("deploy C function: %v", err)
	}
	st, body, _ := call(t, in.gateway, "POST", "/hello", key, "from C")
	if st != 200 || !strings.Contains(string(body), "hello") {
		t.Fatalf("C function: %d %s", st, body)
	}
}
