package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/sdkproxy"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// TestNewGoFunctionOffline is a developer's first function of their own:
// in an empty directory outside the repository, with the Go toolchain's
// network off (GOPROXY=off) and no GOFLAGS, `aegis new go hello` writes a
// function whose unit test passes and which `aegis up hello` serves. The
// SDK comes from the proxy the binary writes; each step starts from an
// empty module cache, so nothing is found anywhere else.
func TestNewGoFunctionOffline(t *testing.T) {
	goCache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "")
	// A fresh user cache directory, so the proxy is written by this test;
	// the build cache is kept where it was (it moves with it otherwise).
	t.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	t.Setenv("GOCACHE", strings.TrimSpace(string(goCache)))
	freshModCache := func(name string) {
		dir := filepath.Join(tmp, name)
		t.Setenv("GOMODCACHE", dir)
		t.Cleanup(func() {
			clean := exec.Command("go", "clean", "-modcache")
			clean.Env = append(os.Environ(), "GOMODCACHE="+dir)
			_ = clean.Run() // module caches are read-only; this makes it removable
		})
	}
	freshModCache("modcache-new")

	dir := filepath.Join(tmp, "hello")
	var out, errs bytes.Buffer
	run := func(args ...string) int {
		out.Reset()
		errs.Reset()
		return cli.Run(context.Background(), args, strings.NewReader(""), &out, &errs, func(string) string { return "" })
	}
	if code := run("new", "go", dir); code != 0 {
		t.Fatalf("aegis new go: exit %d\n%s%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "next: aegis up "+dir) {
		t.Errorf("aegis new go printed %q", out.String())
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.Contains(string(gomod), sdkproxy.ModulePath+" "+sdkproxy.Version()) {
		t.Fatalf("go.mod does not require the SDK this binary carries: %s %v", gomod, err)
	}
	test := exec.Command("go", "test", "./...")
	test.Dir = dir
	if b, err := test.CombinedOutput(); err != nil {
		t.Fatalf("the new function's unit test: %v\n%s", err, b)
	}

	freshModCache("modcache-up") // aegis up's own build must find the SDK too
	up := startUp(t, "http", dir, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	summary := up.out.String()
	// The first request it prints works as printed: the schema's example.
	if !strings.Contains(summary, `-d '{"name":"Ada"}' `+up.gateway+"/hello") {
		t.Errorf("aegis up does not print the working first request:\n%s", summary)
	}
	if !strings.Contains(summary, "aegis --data ") || strings.Contains(summary, "level=") {
		t.Errorf("aegis up's summary lacks the --data hint or has log lines in it:\n%s", summary)
	}
	for _, step := range []string{"building hello …\n", "building hello … ok", "activating hello … v1 active"} {
		if !strings.Contains(up.errs.String(), step) {
			t.Errorf("aegis up's progress lacks %q:\n%s", step, up.errs.String())
		}
	}
	st, body, _ := call(t, up.gateway, "POST", "/hello", up.key, `{"name":"Ada"}`)
	if st != 200 || strings.TrimSpace(string(body)) != `{"message":"hello, Ada"}` {
		t.Errorf("POST /hello: %d %s", st, body)
	}
	// The function is a net/http ServeMux: its wildcard pattern reads the
	// path parameter the gateway routed.
	st, body, _ = call(t, up.gateway, "GET", "/hello/Grace", up.key, nil)
	if st != 200 || strings.TrimSpace(string(body)) != `{"message":"hello, Grace"}` {
		t.Errorf("GET /hello/Grace: %d %s", st, body)
	}
	if st, _, _ := call(t, up.gateway, "POST", "/hello", "", `{"name":"Ada"}`); st != 401 {
		t.Errorf("POST /hello without a key: %d, want 401", st)
	}
	up.stop(t)

	// aegis dev serves the same and redeploys after a save: a failing
	// build keeps the running version, the next good save replaces it.
	dev := startUpCommand(t, "dev", "http", dir, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	if st, body, _ := call(t, dev.gateway, "GET", "/hello/Ada", dev.key, nil); st != 200 || !strings.Contains(string(body), "hello, Ada") {
		t.Fatalf("aegis dev: GET /hello/Ada: %d %s", st, body)
	}
	mainGo := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(mainGo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mainGo, append(bytes.Clone(src), []byte("\nthis does not compile\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "aegis dev to report the failed build", func() bool {
		return strings.Contains(dev.errs.String(), "the previous version keeps serving")
	})
	if st, _, _ := call(t, dev.gateway, "GET", "/hello/Ada", dev.key, nil); st != 200 {
		t.Errorf("after a failed build the previous version answers %d", st)
	}
	if err := os.WriteFile(mainGo, bytes.Replace(src, []byte(`"hello, "`), []byte(`"hi again, "`), -1), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "aegis dev to redeploy the saved change", func() bool {
		st, body, _ := call(t, dev.gateway, "GET", "/hello/Ada", dev.key, nil)
		return st == 200 && strings.Contains(string(body), "hi again, Ada")
	})
	if !strings.Contains(dev.out.String(), "Watching "+dir) || !regexp.MustCompile(`hello v\d+ deployed`).MatchString(dev.out.String()) {
		t.Errorf("aegis dev's output:\n%s", dev.out.String())
	}
	dev.stop(t)

	if code := run("new", "go", dir); code != 1 || !strings.Contains(errs.String(), "not empty") {
		t.Errorf("aegis new go into a directory with files: exit %d, %q", code, errs.String())
	}
}

// TestNewCFunction: `aegis new c` writes a C function and the aegis.h it
// includes; built the way its README says, `aegis up` serves it.
func TestNewCFunction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello-c")
	var out, errs bytes.Buffer
	if code := cli.Run(context.Background(), []string{"new", "c", dir}, strings.NewReader(""), &out, &errs, func(string) string { return "" }); code != 0 {
		t.Fatalf("aegis new c: exit %d\n%s%s", code, out.String(), errs.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), wasmbuild.CReactor(t, filepath.Join(dir, "hello.c")), 0o644); err != nil {
		t.Fatal(err)
	}
	up := startUp(t, "http", dir, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	st, body, _ := call(t, up.gateway, "POST", "/hello", up.key, "hi")
	if st != 200 || strings.TrimSpace(string(body)) != `{"message":"hello from C","bytes":2}` {
		t.Errorf("POST /hello: %d %s", st, body)
	}
	up.stop(t)
}

// TestNewRustFunction: `aegis new rust` writes a crate with the SDK beside
// it, which `aegis up` builds with cargo, deploys and serves.
func TestNewRustFunction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello-rs")
	var out, errs bytes.Buffer
	if code := cli.Run(context.Background(), []string{"new", "rust", dir}, strings.NewReader(""), &out, &errs, func(string) string { return "" }); code != 0 {
		t.Fatalf("aegis new rust: exit %d\n%s%s", code, out.String(), errs.String())
	}
	for _, f := range []string{"Cargo.toml", "lib.rs", "aegis.yaml", "README.md", ".gitignore", "aegis-sdk/Cargo.toml", "aegis-sdk/src/lib.rs", "aegis-sdk/src/json.rs"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("aegis new rust did not write %s: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "next: aegis up "+dir) {
		t.Errorf("aegis new rust printed %q", out.String())
	}
	up := startUp(t, "http", dir, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	st, body, _ := call(t, up.gateway, "GET", "/hello/Ada", up.key, nil)
	if st != 200 || strings.TrimSpace(string(body)) != `{"message":"hello, Ada"}` {
		t.Errorf("GET /hello/Ada: %d %s", st, body)
	}
	if !strings.Contains(up.out.String(), "/hello/") {
		t.Errorf("aegis up's summary names no route:\n%s", up.out.String())
	}
	up.stop(t)
}

// TestNewJSFunction: `aegis new js` writes a function that aegis up builds
// with componentize-js (the test command's install linked in as its
// node_modules), deploys and serves: the route answers and counts visits
// through the aegis:platform kv interface.
func TestNewJSFunction(t *testing.T) {
	modules := os.Getenv("AEGIS_JS_MODULES")
	if modules == "" {
		if os.Getenv("AEGIS_REQUIRE_JS") != "" {
			t.Fatal("AEGIS_JS_MODULES is unset")
		}
		t.Skip("AEGIS_JS_MODULES is unset (scripts/test.sh installs componentize-js and sets it)")
	}
	dir := filepath.Join(t.TempDir(), "hello-js")
	var out, errs bytes.Buffer
	if code := cli.Run(context.Background(), []string{"new", "js", dir}, strings.NewReader(""), &out, &errs, func(string) string { return "" }); code != 0 {
		t.Fatalf("aegis new js: exit %d\n%s%s", code, out.String(), errs.String())
	}
	for _, f := range []string{"package.json", "app.js", "greet.js", "greet.test.js", "aegis.yaml", "README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("aegis new js did not write %s: %v", f, err)
		}
	}
	if err := os.Symlink(filepath.Join(modules, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	up := startUp(t, "http", dir, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	for i := 1; i <= 2; i++ {
		st, body, _ := call(t, up.gateway, "GET", "/hello/Ada", up.key, nil)
		want := fmt.Sprintf(`{"message":"hello, Ada","visits":%d}`, i)
		if st != 200 || strings.TrimSpace(string(body)) != want {
			t.Errorf("GET /hello/Ada #%d: %d %s, want %s", i, st, body, want)
		}
	}
	up.stop(t)
}
