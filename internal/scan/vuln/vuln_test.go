package vuln

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/aegis-platform/aegis/internal/scan"
)

// fixtureProxy serves testdata/vulnlib as example.test/vulnlib at each
// version from a GOPROXY file tree made for the test, and points the go
// command at it alone: nothing is downloaded from anywhere else.
func fixtureProxy(t *testing.T, versions ...string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "example.test", "vulnlib", "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("testdata/vulnlib/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		f, err := os.Create(filepath.Join(dir, v+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		if err := modzip.CreateFromDir(f, module.Version{Path: "example.test/vulnlib", Version: v}, "testdata/vulnlib"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		must(t, os.WriteFile(filepath.Join(dir, v+".mod"), gomod, 0o644))
		must(t, os.WriteFile(filepath.Join(dir, v+".info"), []byte(`{"Version":"`+v+`","Time":"2026-01-01T00:00:00Z"}`), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(dir, "list"), []byte(strings.Join(versions, "\n")+"\n"), 0o644))
	t.Setenv("GOPROXY", "file://"+filepath.ToSlash(root))
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOTOOLCHAIN", "local")
	t.Setenv("GOWORK", "off")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// appAt copies testdata/app to a directory of its own (go.sum is written
// there) requiring vulnlib at version, and loads it.
func appAt(t *testing.T, version string) *scan.App {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	must(t, os.CopyFS(dir, os.DirFS("testdata/app")))
	gomod := strings.Replace(mustRead(t, filepath.Join(dir, "go.mod")), "v1.0.0", version, 1)
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	app, err := scan.LoadApp(filepath.Join(dir, "aegis.yaml"))
	must(t, err)
	return app
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

// A function calling the vulnerable symbol of a listed version is
// reported with the OSV id and the entry's severity, the call named; a
// function depending on it without calling it, one level lower; an entry
// without a severity counts as high.
func TestVulnerableDependency(t *testing.T) {
	fixtureProxy(t, "v1.0.0", "v1.2.0")
	fs, err := Check(context.Background(), appAt(t, "v1.0.0"), "testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]scan.Finding{}
	for _, f := range fs {
		got[f.ID+" "+f.Function] = f
	}
	caller, ok := got["GO-2099-0001 caller"]
	if !ok || caller.Severity != scan.Critical || !strings.Contains(caller.Message, "called: vulnlib.Parse called from caller.main (caller/main.go:12)") ||
		caller.File != "go.mod" || caller.Line != 5 || caller.Rule != RuleVulnerable || !strings.Contains(caller.Fix, "example.test/vulnlib@v1.2.0") {
		t.Errorf("the caller's finding: %+v (all %+v)", caller, fs)
	}
	importer, ok := got["GO-2099-0001 importer"]
	if !ok || importer.Severity != scan.High || !strings.Contains(importer.Message, "does not call") {
		t.Errorf("the importer's finding: %+v", importer)
	}
	// GO-2099-0002 has no severity: high where it is not called (Format is
	// called by no one), one lower.
	if f, ok := got["GO-2099-0002 caller"]; !ok || f.Severity != scan.Medium {
		t.Errorf("the entry without a severity: %+v", f)
	}
	if n := len(scan.Blocking(fs, scan.High)); n == 0 {
		t.Error("nothing blocks at high")
	}
}

// A fixed version is not reported.
func TestFixedVersionQuiet(t *testing.T) {
	fixtureProxy(t, "v1.0.0", "v1.2.0")
	fs, err := Check(context.Background(), appAt(t, "v1.2.0"), "testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("v1.2.0: %+v", fs)
	}
}

// The travel diary has no dependency the fixture lists.
func TestTravelDiaryQuiet(t *testing.T) {
	app, err := scan.LoadApp("../../../examples/travel-diary/aegis.yaml")
	must(t, err)
	fs, err := Check(context.Background(), app, "testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("%+v", fs)
	}
}

// C and Rust functions inside a Go repository are not taken for Go
// packages: each is reported as what cannot be checked.
func TestCAndRustUnverifiable(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":         "module example.test/repo\n\ngo 1.24\n",
		"cfn/hello.c":    "int main(void) { return 0; }\n",
		"rfn/Cargo.toml": "[package]\nname = \"rfn\"\nversion = \"0.1.0\"\n",
		"aegis.yaml": `app: mixed
functions:
  cfn:
    source: ./cfn
    triggers:
      - http: { method: GET, path: /c }
  rfn:
    source: ./rfn
    triggers:
      - http: { method: GET, path: /r }
`,
	}
	for name, text := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	app, err := scan.LoadApp(filepath.Join(dir, "aegis.yaml"))
	must(t, err)
	fs, err := Check(context.Background(), app, "testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cfn": "not a Go package", "rfn": "a Rust crate"}
	if len(fs) != len(want) {
		t.Fatalf("findings %+v, want one for each function", fs)
	}
	for _, f := range fs {
		if f.Rule != RuleUnverifiable || !strings.Contains(f.Message, want[f.Function]) {
			t.Errorf("%+v, want unverifiable saying %q", f, want[f.Function])
		}
	}
}

func TestDatabaseRefused(t *testing.T) {
	app, err := scan.LoadApp("testdata/app/aegis.yaml")
	must(t, err)
	for _, db := range []string{"", "testdata/no-such-db", "ftp://example.test/db", "testdata/vulnlib"} {
		if _, err := Check(context.Background(), app, db); err == nil {
			t.Errorf("database %q accepted", db)
		}
	}
}

// A Go module built with a listed version names it in its build
// information: found without the sources, and said to be so. A module
// with no build information is unverifiable, its producers named.
func TestCheckModule(t *testing.T) {
	fixtureProxy(t, "v1.0.0", "v1.2.0")
	app := appAt(t, "v1.0.0")
	out := filepath.Join(t.TempDir(), "caller.wasm")
	cmd := exec.Command("go", "build", "-o", out, "./caller")
	cmd.Dir = app.Dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	must(t, err)
	fs, err := CheckModule(context.Background(), "caller", wasm, "testdata/osv")
	must(t, err)
	ids := map[string]scan.Finding{}
	for _, f := range fs {
		ids[f.ID] = f
	}
	if f, ok := ids["GO-2099-0001"]; !ok || f.Severity != scan.Critical || f.File != "module:caller" || !strings.Contains(f.Message, "build information") {
		t.Errorf("the built module: %+v", fs)
	}
	if fs, err := CheckModule(context.Background(), "caller", wasm, ""); err != nil || len(fs) != 0 {
		t.Errorf("without a database: %+v %v", fs, err)
	}

	// magic, version, a custom "producers" section: language C11.
	producersSection := []byte("\x09producers\x01\x08language\x01\x03C11\x00")
	mod := append([]byte("\x00asm\x01\x00\x00\x00\x00"), byte(len(producersSection)))
	mod = append(mod, producersSection...)
	fs, err = CheckModule(context.Background(), "hello", mod, "testdata/osv")
	if err != nil || len(fs) != 1 || fs[0].Rule != RuleUnverifiable || fs[0].Severity != scan.Info || !strings.Contains(fs[0].Message, "language C11") {
		t.Errorf("a C module: %+v %v", fs, err)
	}
}

// What a module says of itself is read from untrusted bytes.
func FuzzModuleInfo(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x00\x17\x09producers\x01\x08language\x01\x03C11\x00"))
	f.Add([]byte("\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6path\tx\nmod\tx\t(devel)\t\n\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = producers(b)
		_ = goBuildInfo(b)
	})
}
