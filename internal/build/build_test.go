package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wasmHeader is the smallest valid WebAssembly module: magic and version.
var wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// writeFiles creates files (relative path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goFunction is a wasip1 reactor with one export, in its own module so the
// test needs nothing but the Go toolchain.
var goFunction = map[string]string{
	"go.mod": "module example.com/hello\n\ngo 1.24\n",
	"main.go": `package main

//go:wasmexport add
func add(a, b int32) int32 { return a + b }

func main() {}
`,
}

func requireGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain on PATH")
	}
}

func TestBuild(t *testing.T) {
	requireGo(t)
	dir := t.TempDir()
	for name, content := range goFunction {
		writeFiles(t, dir, map[string]string{"functions/hello/" + name: content})
	}
	if err := os.WriteFile(filepath.Join(dir, "prebuilt.wasm"), wasmHeader, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"aegis.yaml": `app: demo
functions:
  hello:
    source: ./functions/hello
  prebuilt:
    source: prebuilt.wasm
`})

	var progress bytes.Buffer
	arts, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), &progress)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(arts) != 2 || arts[0].Function != "hello" || arts[1].Function != "prebuilt" {
		t.Fatalf("artifacts = %+v, want hello then prebuilt", arts)
	}

	hello := arts[0]
	if want := filepath.Join(dir, OutputDir, "hello.wasm"); hello.Path != want {
		t.Errorf("hello path = %s, want %s", hello.Path, want)
	}
	b, err := os.ReadFile(hello.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, wasmHeader[:4]) {
		t.Errorf("hello.wasm does not start with the wasm magic")
	}
	if sum := sha256.Sum256(b); hello.SHA256 != hex.EncodeToString(sum[:]) || hello.Size != int64(len(b)) {
		t.Errorf("hello artifact = %+v, does not describe the file", hello)
	}

	pre := arts[1]
	sum := sha256.Sum256(wasmHeader)
	if pre.Path != filepath.Join(dir, "prebuilt.wasm") || pre.SHA256 != hex.EncodeToString(sum[:]) || pre.Size != int64(len(wasmHeader)) {
		t.Errorf("prebuilt artifact = %+v", pre)
	}

	for _, want := range []string{"building hello … ok (", "building prebuilt … ok ("} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress %q lacks %q", progress.String(), want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	requireGo(t)
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{
			name: "compile error names the function and shows the compiler output",
			files: map[string]string{
				"aegis.yaml":     "app: demo\nfunctions:\n  broken:\n    source: ./broken\n",
				"broken/go.mod":  "module example.com/broken\n\ngo 1.24\n",
				"broken/main.go": "package main\n\nfunc main() { undefinedThing() }\n",
			},
			want: []string{"build broken:", "undefinedThing"},
		},
		{
			// The manifest line naming the source is what to fix, so
			// the error points there (file:line, field), not at a stat.
			name: "missing source directory",
			files: map[string]string{
				"aegis.yaml": "app: demo\nfunctions:\n  a:\n    source: a.wasm\n  ghost:\n    # moved?\n    source: ./nowhere\n",
				"a.wasm":     string(wasmHeader),
			},
			want: []string{"build ghost: ", "aegis.yaml:7: functions.ghost.source: source directory ./nowhere does not exist (looked for "},
		},
		{
			name: "missing wasm file",
			files: map[string]string{
				"aegis.yaml": "app: demo\nfunctions:\n  ghost:\n    limits: { timeout: 1s }\n    source: ghost.wasm\n",
			},
			want: []string{"build ghost: ", "aegis.yaml:5: functions.ghost.source: module ghost.wasm does not exist"},
		},
		{
			name: "source is a plain file",
			files: map[string]string{
				"aegis.yaml": "app: demo\nfunctions:\n  odd:\n    source: notes.txt\n",
				"notes.txt":  "hello",
			},
			want: []string{"build odd:", "neither a Go package, Rust crate or JavaScript function directory nor a .wasm file"},
		},
		{
			// A crate must build a cdylib: a binary or rlib has no
			// aegis_handle to export.
			name: "rust crate without a cdylib",
			files: map[string]string{
				"aegis.yaml":    "app: demo\nfunctions:\n  rs:\n    source: ./rs\n",
				"rs/Cargo.toml": "[package]\nname = \"rs\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
				"rs/src/lib.rs": "",
			},
			want: []string{"build rs:", `crate-type = ["cdylib"]`},
		},
		{
			name: "rust compile error",
			files: map[string]string{
				"aegis.yaml":    "app: demo\nfunctions:\n  rs:\n    source: ./rs\n",
				"rs/Cargo.toml": "[package]\nname = \"rs\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n",
				"rs/src/lib.rs": "fn broken() -> u32 { undefined_thing }\n",
			},
			want: []string{"build rs:", "cargo build:", "undefined_thing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			var progress bytes.Buffer
			arts, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), &progress)
			if err == nil {
				t.Fatalf("Build succeeded with %+v, want an error", arts)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(progress.String(), "… failed") {
				t.Errorf("progress %q does not report the failure", progress.String())
			}
		})
	}
}

// A failing function does not hide the others' failures: every broken
// function is named, so one run shows everything to fix.
func TestBuildReportsEveryFailure(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"aegis.yaml": "app: demo\nfunctions:\n  a:\n    source: a.wasm\n  b:\n    source: b.wasm\n  c:\n    source: c.wasm\n",
		"b.wasm":     string(wasmHeader),
	})
	_, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "build a:") || !strings.Contains(err.Error(), "build c:") {
		t.Fatalf("error = %v, want both a and c named", err)
	}
	if strings.Contains(err.Error(), "build b:") {
		t.Errorf("error %v names b, which built", err)
	}
}

func TestBuildBadManifest(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"aegis.yaml": "app: demo\nfunctions: {}\n"})
	if _, err := Build(context.Background(), filepath.Join(dir, "aegis.yaml"), nil); err == nil {
		t.Fatal("Build of a manifest without functions succeeded")
	}
	if _, err := Build(context.Background(), filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Fatal("Build of a missing manifest succeeded")
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 2_345_678: "2.3 MB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
