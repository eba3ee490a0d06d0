package sdkproxy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
)

func TestVersion(t *testing.T) {
	v := Version()
	// Test binaries carry no release version: the SDK's is its digest.
	if !module.IsPseudoVersion(v) || !strings.HasSuffix(v, digest()[:12]) {
		t.Errorf("Version() = %q, want a pseudo-version ending in the SDK's digest", v)
	}
	for v, want := range map[string]bool{
		"v1.2.3": true, "v0.4.0-rc.1": true, "(devel)": false, "": false, "v1.2.3+dirty": false,
		"v0.0.0-20261204000000-0123456789ab": false, "1.2.3": false,
	} {
		if got := releaseVersion(v); got != want {
			t.Errorf("releaseVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestWithProxy(t *testing.T) {
	dir := "/cache/aegis/goproxy"
	url := "file:///cache/aegis/goproxy"
	for _, tc := range []struct{ in, want Settings }{
		{Settings{}, Settings{url + ",https://proxy.golang.org,direct", ModulePath}},
		{Settings{"off", ""}, Settings{url + ",off", ModulePath}},
		{Settings{"https://goproxy.corp.example", "corp.example/*"}, Settings{url + ",https://goproxy.corp.example", "corp.example/*," + ModulePath}},
		{Settings{url + ",direct", ModulePath}, Settings{url + ",direct", ModulePath}},
	} {
		if got := withProxy(dir, tc.in); got != tc.want {
			t.Errorf("withProxy(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// TestGoToolchainFetchesTheSDK: with the network off, the go command
// downloads the SDK from the proxy Ensure writes, verifies the zip against
// the go.sum it records, and gets the SDK's files.
func TestGoToolchainFetchesTheSDK(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy")
	// Writers racing on one directory must leave a complete version.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := Ensure(proxy); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := os.ReadFile(filepath.Join(proxy, filepath.FromSlash(ModulePath), "@v", "list"))
	if err != nil || strings.TrimSpace(string(list)) != Version() {
		t.Fatalf("@v/list = %q, %v; want %s", list, err, Version())
	}

	modcache := filepath.Join(tmp, "modcache")
	environ := append(os.Environ(), "GOPROXY=off", "GOFLAGS=", "GOMODCACHE="+modcache, "GOWORK=off")
	t.Cleanup(func() {
		clean := exec.Command(goBin, "clean", "-modcache")
		clean.Env = environ
		_ = clean.Run() // the module cache is read-only; this makes it removable
	})
	env, err := Env(context.Background(), goBin, proxy, environ)
	if err != nil {
		t.Fatal(err)
	}
	fn := filepath.Join(tmp, "fn")
	if err := os.MkdirAll(fn, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod := "module fn\n\ngo 1.26\n\nrequire " + ModulePath + " " + Version() + "\n"
	if err := os.WriteFile(filepath.Join(fn, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", ModulePath)
	cmd.Dir, cmd.Env = fn, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	dir := filepath.Join(modcache, filepath.FromSlash(ModulePath)+"@"+Version())
	for _, name := range []string{"go.mod", "handler.go", "source.go"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("the downloaded SDK lacks %s: %v\n%s", name, err, out)
		}
	}
	if !strings.Contains(string(out), `"Sum": "h1:`) {
		t.Errorf("no checksum in %s", out)
	}
}
