// Package scaffold writes a new function (`aegis new`): a handler that
// works, its aegis.yaml, a unit test, a README and what the language needs
// to build, so that `aegis up DIR` runs it as it is. It writes files only;
// the CLI runs the toolchain afterwards (go mod tidy; a JavaScript
// function's npm install is aegis build's).
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/aegis-platform/aegis/manifest"
)

//go:embed templates
var templates embed.FS

// Languages are the languages New writes functions in.
var Languages = []string{"c", "go", "js", "rust"}

// Params fill the templates.
type Params struct {
	App        string // app name, also the Go module path
	SDKModule  string // the Go SDK's module path
	SDKVersion string // the Go SDK version the binary carries
	CHeader    []byte // sdk/c/aegis.h, written next to a C function
	RustSDK    fs.FS  // sdk/rust's crate, written into aegis-sdk/ beside a Rust function
	// ComponentizeJS is the componentize-js version a JavaScript
	// function's package.json pins: the one aegis build is made for.
	ComponentizeJS string
}

// ErrNotEmpty is returned when the target directory already has files:
// New never overwrites anything.
var ErrNotEmpty = errors.New("directory is not empty")

// New writes a function in lang into dir, which must not exist or be
// empty, and returns the files it wrote, relative to dir.
func New(lang, dir string, p Params) ([]string, error) {
	if !slices.Contains(Languages, lang) {
		return nil, fmt.Errorf("unknown language %q: use one of %s", lang, strings.Join(Languages, ", "))
	}
	if lang == "js" && p.ComponentizeJS == "" {
		return nil, errors.New("no componentize-js version to pin in package.json")
	}
	if err := manifest.CheckAppName(p.App); err != nil {
		return nil, fmt.Errorf("app name %q: %w", p.App, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotEmpty)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root := "templates/" + lang
	entries, err := fs.ReadDir(templates, root)
	if err != nil {
		return nil, err
	}
	var wrote []string
	for _, e := range entries {
		name := outputName(e.Name())
		var out bytes.Buffer
		t, err := template.ParseFS(templates, root+"/"+e.Name())
		if err != nil {
			return wrote, fmt.Errorf("template %s: %w", e.Name(), err)
		}
		if err := t.Execute(&out, p); err != nil {
			return wrote, fmt.Errorf("template %s: %w", e.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, name)
	}
	if lang == "c" {
		if err := os.WriteFile(filepath.Join(dir, "aegis.h"), p.CHeader, 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, "aegis.h")
	}
	if lang == "rust" {
		files, err := writeTree(p.RustSDK, filepath.Join(dir, "aegis-sdk"))
		for _, f := range files {
			wrote = append(wrote, filepath.Join("aegis-sdk", f))
		}
		if err != nil {
			return wrote, err
		}
	}
	slices.Sort(wrote)
	return wrote, nil
}

// writeTree copies every file of src under dir, returning their paths.
func writeTree(src fs.FS, dir string) ([]string, error) {
	if src == nil {
		return nil, errors.New("the Rust SDK is missing from this binary")
	}
	var wrote []string
	err := fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, path)
		if err != nil {
			return err
		}
		out := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		wrote = append(wrote, filepath.FromSlash(path))
		return nil
	})
	return wrote, err
}

// outputName is the file a template writes: its name without .tmpl, and
// gitignore as .gitignore (a dot file would be left out of the embed).
func outputName(tmpl string) string {
	name := strings.TrimSuffix(tmpl, ".tmpl")
	if name == "gitignore" {
		return ".gitignore"
	}
	return name
}

var notName = regexp.MustCompile(`[^a-z0-9-]+`)

// AppName makes an app name out of a directory's name: lower case, runs
// of other characters turned into '-', a letter first; "hello" when
// nothing usable is left.
func AppName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	name := notName.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-")
	name = strings.TrimLeft(name, "-0123456789")
	name = strings.TrimRight(name, "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if manifest.CheckAppName(name) != nil {
		return "hello"
	}
	return name
}
