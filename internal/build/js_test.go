package build

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/scaffold"
	aegisplatform "github.com/aegis-platform/aegis/wit/aegis-platform"
)

// componentHeader starts every WebAssembly component (layer 1).
var componentHeader = []byte("\x00asm\x0d\x00\x01\x00")

func TestJSWorld(t *testing.T) {
	for _, want := range []string{
		"package local:function;",
		"world function {",
		"include aegis:platform/function@" + aegisplatform.Version + ";",
		"include wasi:http/proxy@0.2.10;",
	} {
		if !strings.Contains(jsWorld, want) {
			t.Errorf("the world lacks %q:\n%s", want, jsWorld)
		}
	}
}

func TestPackageMain(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr string
	}{
		{"main named", map[string]string{"package.json": `{"name":"f","main":"app.js"}`, "app.js": ""}, "app.js", ""},
		{"main in a subdirectory", map[string]string{"package.json": `{"main":"./src/app.js"}`, "src/app.js": ""}, filepath.Join("src", "app.js"), ""},
		{"index.js by default", map[string]string{"package.json": `{"name":"f"}`, "index.js": ""}, "index.js", ""},
		{"no main, no index.js", map[string]string{"package.json": `{}`}, "", `names no "main" and there is no index.js`},
		{"main missing", map[string]string{"package.json": `{"main":"app.js"}`}, "", `"main" is app.js, which does not exist`},
		{"main outside", map[string]string{"package.json": `{"main":"../app.js"}`}, "", "not a file inside the function's directory"},
		{"main absolute", map[string]string{"package.json": `{"main":"/etc/passwd"}`}, "", "not a file inside the function's directory"},
		{"main a directory", map[string]string{"package.json": `{"main":"src"}`, "src/app.js": ""}, "", "does not exist"},
		{"not JSON", map[string]string{"package.json": `{"main":`}, "", "read package.json"},
		{"main not a string", map[string]string{"package.json": `{"main":1}`}, "", "read package.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			got, err := packageMain(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("packageMain = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("packageMain = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// writeWASIRelease writes the packages of one WASI release (all of
// wasiPackages, or those named) as jco lays them out.
func writeWASIRelease(t *testing.T, builtin, release string, pkgs ...string) {
	t.Helper()
	if pkgs == nil {
		pkgs = wasiPackages
	}
	for _, p := range pkgs {
		name := strings.TrimPrefix(p, "wasi-")
		writeFiles(t, builtin, map[string]string{
			release + "/" + p + "/package.wit": "package wasi:" + name + "@" + release + ";\n\ninterface x {\n  use wasi:io/poll@" + release + ".{pollable};\n}\n",
		})
	}
}

func TestWASIWIT(t *testing.T) {
	t.Run("the release the engine imports", func(t *testing.T) {
		builtin := t.TempDir()
		writeWASIRelease(t, builtin, "0.2.10")
		writeWASIRelease(t, builtin, "0.2.12")
		files, err := wasiWIT(builtin)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(files["wasi-http/package.wit"]); got != "package wasi:http@0.2.10;\n\ninterface x {\n  use wasi:io/poll@0.2.10.{pollable};\n}\n" {
			t.Errorf("wasi-http:\n%s", got)
		}
		if len(files) != len(wasiPackages) {
			t.Errorf("files: %v", slices.Sorted(maps.Keys(files)))
		}
	})
	t.Run("jco 1.35: 0.2.10 in part, 0.2.12 whole", func(t *testing.T) {
		builtin := t.TempDir()
		writeWASIRelease(t, builtin, "0.2.3")
		writeWASIRelease(t, builtin, "0.2.10", "wasi-clocks", "wasi-io", "wasi-sockets")
		writeWASIRelease(t, builtin, "0.2.12")
		writeWASIRelease(t, builtin, "0.2.13")
		writeWASIRelease(t, builtin, "0.3.0")
		files, err := wasiWIT(builtin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range wasiPackages {
			got := string(files[p+"/package.wit"])
			if !strings.Contains(got, "package wasi:"+strings.TrimPrefix(p, "wasi-")+"@0.2.10;") || !strings.Contains(got, "poll@0.2.10.{pollable}") || strings.Contains(got, "0.2.12") {
				t.Errorf("%s is not 0.2.12's renamed to 0.2.10:\n%s", p, got)
			}
		}
	})
	t.Run("no release late enough", func(t *testing.T) {
		builtin := t.TempDir()
		writeWASIRelease(t, builtin, "0.2.3")
		writeWASIRelease(t, builtin, "0.2.10", "wasi-io")
		writeWASIRelease(t, builtin, "0.3.0")
		_, err := wasiWIT(builtin)
		if err == nil || !strings.Contains(err.Error(), builtin) || !strings.Contains(err.Error(), "wasi-http") {
			t.Fatalf("wasiWIT = %v, want an error naming %s and the packages", err, builtin)
		}
	})
}

// jsFunction is the smallest JavaScript function source.
var jsFunction = map[string]string{
	"package.json": `{"name":"hello","type":"module","main":"app.js"}`,
	"app.js":       `addEventListener("fetch", (e) => e.respondWith(new Response("hi")));`,
}

func TestBuildJSWithoutNode(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"aegis.yaml": "app: demo\nfunctions:\n  hello:\n    source: ./hello\n"})
	for name, content := range jsFunction {
		writeFiles(t, dir, map[string]string{"hello/" + name: content})
	}
	t.Setenv("PATH", t.TempDir())
	_, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), nil)
	if !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "build hello: ") || !strings.Contains(err.Error(), "install Node.js") {
		t.Fatalf("Build = %v, want ErrNoNode saying what to install", err)
	}
}

// fakeTools puts on PATH a node and an npm that record how they are run
// (into the directory returned): node writes a component header to the
// output its build script is given and keeps a copy of the WIT directory;
// npm install copies modules into node_modules.
func fakeTools(t *testing.T, modules string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in node and npm are shell scripts")
	}
	bin, rec := t.TempDir(), t.TempDir()
	writeFiles(t, bin, map[string]string{
		// node SCRIPT SOURCE_DIR MAIN WIT_DIR OUT
		"node": `#!/bin/sh
{ pwd; printf '%s\n' "$@"; echo "$TMPDIR"; } > "$FAKE_RECORD/node"
cp "$1" "$FAKE_RECORD/script.mjs"
cp -R "$4" "$FAKE_RECORD/wit"
printf '\000asm\015\000\001\000' > "$5"
`,
		"npm": `#!/bin/sh
{ pwd; printf '%s\n' "$@"; } > "$FAKE_RECORD/npm"
cp -R "$FAKE_MODULES" node_modules
`,
	})
	for _, f := range []string{"node", "npm"} {
		if err := os.Chmod(filepath.Join(bin, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_RECORD", rec)
	t.Setenv("FAKE_MODULES", modules)
	return rec
}

// fakeModules is a node_modules with componentize-js and jco 1.35's WASI
// WIT files, as npm install leaves them.
func fakeModules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"@bytecodealliance/componentize-js/package.json": `{"name":"@bytecodealliance/componentize-js","version":"0.23.0"}`})
	builtin := filepath.Join(dir, "@bytecodealliance", "jco", "lib", "wit", "builtin")
	writeWASIRelease(t, builtin, "0.2.10", "wasi-clocks", "wasi-io", "wasi-sockets")
	writeWASIRelease(t, builtin, "0.2.12")
	return dir
}

// TestBuildJSSteps follows a JavaScript build with stand-ins for node and
// npm: npm install when node_modules lacks componentize-js, the WIT
// directory assembled, the build script run from the source directory
// with its arguments, and nothing left behind but the module.
func TestBuildJSSteps(t *testing.T) {
	modules := fakeModules(t)
	rec := fakeTools(t, modules)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"aegis.yaml": "app: demo\nfunctions:\n  hello:\n    source: ./hello\n"})
	for name, content := range jsFunction {
		writeFiles(t, dir, map[string]string{"hello/" + name: content})
	}
	var progress bytes.Buffer
	arts, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), &progress)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "hello")
	out := filepath.Join(dir, OutputDir, "hello.wasm")
	if len(arts) != 1 || arts[0].Path != out || arts[0].Size != int64(len(componentHeader)) {
		t.Fatalf("artifacts: %+v", arts)
	}
	if !strings.Contains(progress.String(), "building hello … npm install in "+src+"\n") {
		t.Errorf("progress does not say npm install runs:\n%s", progress.String())
	}
	if npm, _ := os.ReadFile(filepath.Join(rec, "npm")); string(npm) != src+"\ninstall\n--no-audit\n--no-fund\n" {
		t.Errorf("npm ran as:\n%s", npm)
	}
	node, _ := os.ReadFile(filepath.Join(rec, "node"))
	lines := strings.Split(strings.TrimSpace(string(node)), "\n")
	if len(lines) != 7 || lines[0] != src || lines[2] != src || lines[3] != "app.js" || lines[5] != out ||
		filepath.Dir(lines[1]) != lines[6] || filepath.Dir(lines[4]) != lines[6] || filepath.Dir(lines[6]) != filepath.Dir(out) {
		t.Errorf("node ran as (cwd, args, TMPDIR):\n%s", node)
	}
	if script, _ := os.ReadFile(filepath.Join(rec, "script.mjs")); !bytes.Equal(script, componentizeScript) {
		t.Error("node did not run the build script")
	}
	if world, _ := os.ReadFile(filepath.Join(rec, "wit", "world.wit")); string(world) != jsWorld {
		t.Errorf("world.wit:\n%s", world)
	}
	if platform, _ := os.ReadFile(filepath.Join(rec, "wit", "deps", "aegis-platform", "platform.wit")); !bytes.Equal(platform, aegisplatform.WIT) {
		t.Error("deps/aegis-platform/platform.wit is not the platform's WIT")
	}
	for _, p := range wasiPackages {
		b, err := os.ReadFile(filepath.Join(rec, "wit", "deps", p, "package.wit"))
		if err != nil || !strings.Contains(string(b), "@0.2.10;") {
			t.Errorf("deps/%s/package.wit: %v\n%s", p, err, b)
		}
	}
	// The temporary directory is gone: only the module is left.
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil || len(entries) != 1 || entries[0].Name() != "hello.wasm" {
		t.Errorf("left in %s: %v %v", filepath.Dir(out), entries, err)
	}

	// Built again, node_modules is there: no npm install.
	if err := os.Remove(filepath.Join(rec, "npm")); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	if _, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), &progress); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rec, "npm")); err == nil || strings.Contains(progress.String(), "npm install") {
		t.Errorf("npm install ran again:\n%s", progress.String())
	}
}

func TestBuildJSErrors(t *testing.T) {
	modules := fakeModules(t)
	fakeTools(t, modules)
	noJCO := t.TempDir()
	writeFiles(t, noJCO, map[string]string{"@bytecodealliance/componentize-js/package.json": `{"version":"0.23.0"}`})
	noComponentize := t.TempDir()
	writeFiles(t, noComponentize, map[string]string{"left-pad/package.json": `{"version":"1.3.0"}`})

	tests := []struct {
		name    string
		modules string // what npm install brings
		files   map[string]string
		want    []string
	}{
		{
			name:    "main missing",
			modules: modules,
			files:   map[string]string{"package.json": `{"main":"app.js"}`},
			want:    []string{"build hello: ", `"main" is app.js, which does not exist`},
		},
		{
			name:    "npm install brings no componentize-js",
			modules: noComponentize,
			files:   jsFunction,
			want:    []string{"build hello: ", "npm install did not install @bytecodealliance/componentize-js", "npm install --save-dev @bytecodealliance/componentize-js@" + ComponentizeJSVersion},
		},
		{
			name:    "no WASI WIT files",
			modules: noJCO,
			files:   jsFunction,
			want:    []string{"build hello: ", "the WASI WIT files are missing", filepath.Join("node_modules", "@bytecodealliance", "jco", "lib", "wit", "builtin")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FAKE_MODULES", tt.modules)
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"aegis.yaml": "app: demo\nfunctions:\n  hello:\n    source: ./hello\n"})
			for name, content := range tt.files {
				writeFiles(t, dir, map[string]string{"hello/" + name: content})
			}
			_, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), nil)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// jsModules is the node_modules holding componentize-js that
// scripts/test.sh installs once (AEGIS_JS_MODULES names the directory
// holding it), so the tests that build JavaScript use no network.
func jsModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AEGIS_JS_MODULES")
	if dir == "" && os.Getenv("AEGIS_REQUIRE_JS") != "" {
		t.Fatal("AEGIS_JS_MODULES is unset, and the test command requires the JavaScript builds")
	}
	if dir == "" {
		t.Skip("AEGIS_JS_MODULES is unset: building JavaScript needs componentize-js from npm; " +
			"scripts/test.sh installs it once and sets AEGIS_JS_MODULES to the directory holding its node_modules")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("AEGIS_JS_MODULES is set, but there is no node on PATH: %v", err)
	}
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, filepath.FromSlash(componentizeJS), "package.json")); err != nil {
		t.Fatalf("AEGIS_JS_MODULES=%s holds no componentize-js: %v", dir, err)
	}
	return modules
}

// linkModules gives the JavaScript function in dir the test's node_modules.
func linkModules(t *testing.T, dir, modules string) {
	t.Helper()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
}

// TestBuildJS builds real components with componentize-js:
// examples/hello-js, and what `aegis new js` writes, whose app.js imports
// greet.js by relative path.
func TestBuildJS(t *testing.T) {
	modules := jsModules(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"aegis.yaml": "app: demo\nfunctions:\n  example:\n    source: ./example\n  scaffold:\n    source: ./scaffold\n"})
	// The example's sources only: a node_modules npm installed there
	// stays out.
	for _, f := range []string{"package.json", "app.js"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello-js", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"example/" + f: string(b)})
	}
	if _, err := scaffold.New("js", filepath.Join(dir, "scaffold"), scaffold.Params{App: "scaffold", ComponentizeJS: ComponentizeJSVersion}); err != nil {
		t.Fatal(err)
	}
	linkModules(t, filepath.Join(dir, "example"), modules)
	linkModules(t, filepath.Join(dir, "scaffold"), modules)

	var progress bytes.Buffer
	arts, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), &progress)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Logf("progress:\n%s", progress.String())
	for _, a := range arts {
		b, err := os.ReadFile(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, componentHeader) {
			t.Errorf("%s is not a component: % x", a.Function, b[:min(8, len(b))])
		}
		// The component imports the table interface and exports the
		// HTTP handler, at the versions the platform serves.
		for _, name := range []string{"aegis:platform/kv@0.1.0", "wasi:http/incoming-handler@0.2.10"} {
			if !bytes.Contains(b, []byte(name)) {
				t.Errorf("%s does not name %s", a.Function, name)
			}
		}
	}
	if strings.Contains(progress.String(), "npm install") {
		t.Errorf("npm install ran although node_modules was there:\n%s", progress.String())
	}
}

// TestBuildJSFailure: a script that does not parse fails the build, with
// where it is.
func TestBuildJSFailure(t *testing.T) {
	modules := jsModules(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"aegis.yaml":          "app: demo\nfunctions:\n  broken:\n    source: ./broken\n",
		"broken/package.json": `{"type":"module","main":"app.js"}`,
		"broken/app.js":       "addEventListener(\"fetch\", (e) => {\n  e.respondWith(new Response(\"hi\")\n",
	})
	linkModules(t, filepath.Join(dir, "broken"), modules)
	_, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), nil)
	if err == nil {
		t.Fatal("a script with a syntax error built")
	}
	for _, want := range []string{"build broken: componentize-js: exit status 1", "app.js:2", "SyntaxError: missing ) after argument list"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
