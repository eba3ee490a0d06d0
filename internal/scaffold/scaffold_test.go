package scaffold

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/manifest"
)

var params = Params{App: "hello", SDKModule: "example.com/sdk", SDKVersion: "v1.2.3", CHeader: []byte("/* aegis.h */\n"), ComponentizeJS: "9.8.7"}

func TestNewGo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello")
	files, err := New("go", dir, params)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".gitignore", "README.md", "aegis.yaml", "go.mod", "hello.schema.json", "main.go", "main_test.go"}
	if !slices.Equal(files, want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(gomod), "module hello\n") || !strings.Contains(string(gomod), "require example.com/sdk v1.2.3\n") {
		t.Errorf("go.mod:\n%s", gomod)
	}
	main, _ := os.ReadFile(filepath.Join(dir, "main.go"))
	if !strings.Contains(string(main), `aegis "example.com/sdk"`) {
		t.Errorf("main.go does not import the SDK:\n%s", main)
	}
	m, err := manifest.Load(filepath.Join(dir, "aegis.yaml"))
	if err != nil {
		t.Fatalf("the manifest it writes does not load: %v", err)
	}
	if m.App != "hello" || m.Functions["hello"] == nil {
		t.Errorf("manifest: %+v", m)
	}
}

func TestNewC(t *testing.T) {
	dir := t.TempDir()
	files, err := New("c", dir, params)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".gitignore", "README.md", "aegis.h", "aegis.yaml", "hello.c"}; !slices.Equal(files, want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	if h, _ := os.ReadFile(filepath.Join(dir, "aegis.h")); string(h) != string(params.CHeader) {
		t.Errorf("aegis.h = %q", h)
	}
	if _, err := manifest.Load(filepath.Join(dir, "aegis.yaml")); err != nil {
		t.Errorf("the manifest it writes does not load: %v", err)
	}
}

func TestNewJS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello-js")
	p := params
	p.App = "hello-js"
	files, err := New("js", dir, p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".gitignore", "README.md", "aegis.yaml", "app.js", "greet.js", "greet.test.js", "package.json"}
	if !slices.Equal(files, want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Name, Type, Main string
		Scripts          map[string]string
		DevDependencies  map[string]string
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("package.json is not JSON: %v\n%s", err, b)
	}
	if pkg.Name != "hello-js" || pkg.Type != "module" || pkg.Main != "app.js" || pkg.Scripts["test"] != "node --test" ||
		pkg.DevDependencies["@bytecodealliance/componentize-js"] != "9.8.7" {
		t.Errorf("package.json: %+v", pkg)
	}
	app, _ := os.ReadFile(filepath.Join(dir, "app.js"))
	for _, imp := range []string{`from "aegis:platform/kv@0.1.0"`, `from "./greet.js"`, `addEventListener("fetch"`} {
		if !strings.Contains(string(app), imp) {
			t.Errorf("app.js lacks %s:\n%s", imp, app)
		}
	}
	m, err := manifest.Load(filepath.Join(dir, "aegis.yaml"))
	if err != nil {
		t.Fatalf("the manifest it writes does not load: %v", err)
	}
	if fn := m.Functions["hello"]; m.App != "hello-js" || fn == nil || fn.Source != "." {
		t.Errorf("manifest: %+v", m)
	}

	// The unit test it writes passes, with nothing installed: it needs
	// node only, never the platform.
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH: the written unit test was not run")
	}
	test := exec.Command(node, "--test")
	test.Dir = dir
	if out, err := test.CombinedOutput(); err != nil {
		t.Errorf("node --test in the new function: %v\n%s", err, out)
	}

	p.ComponentizeJS = ""
	if _, err := New("js", t.TempDir(), p); err == nil {
		t.Error("a JavaScript function without a componentize-js version to pin was written")
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New("go", dir, params); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("into a directory with files: %v, want ErrNotEmpty", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "main.go")); string(b) != "mine" {
		t.Errorf("main.go overwritten: %q", b)
	}
	if _, err := New("cobol", t.TempDir(), params); err == nil || !strings.Contains(err.Error(), "unknown language") {
		t.Errorf("unknown language: %v", err)
	}
	bad := params
	bad.App = "Hello World"
	if _, err := New("go", t.TempDir(), bad); err == nil || !strings.Contains(err.Error(), "app name") {
		t.Errorf("bad app name: %v", err)
	}
}

func TestAppName(t *testing.T) {
	for dir, want := range map[string]string{
		"hello": "hello", "/tmp/My Function": "my-function", "./123go": "go", "___": "hello",
		"a.b_c": "a-b-c", strings.Repeat("x", 80): strings.Repeat("x", 63),
	} {
		if got := AppName(dir); got != want {
			t.Errorf("AppName(%q) = %q, want %q", dir, got, want)
		}
	}
}
