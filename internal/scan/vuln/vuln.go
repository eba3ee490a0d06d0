// Package vuln finds known vulnerabilities in the dependencies of an
// app's functions (docs/scan.md), against an OSV database the operator
// names (a directory or an http(s) URL; never one they did not).
//
// Go functions are checked from their sources with golang.org/x/vuln
// (govulncheck run in-process, the only package importing it), which is
// reachability-aware: a finding says whether the function's code calls
// the vulnerable symbol (keeping the entry's severity) or only depends on
// the vulnerable version without calling it (one level lower: worth an
// upgrade, not an emergency). Built modules (a prebuilt .wasm, or what
// the server receives) have no sources: a Go-built module's build
// information names its module versions, checked against the database
// without reachability; a C or other module names none, and is reported
// as unverifiable (info) with what its producers section says.
package vuln

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	govulncheck "golang.org/x/vuln/scan"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/internal/sdkproxy"
)

// The rules' ids.
const (
	RuleVulnerable   = "vulnerable-dependency"
	RuleUnverifiable = "unverifiable-module"
)

var rules = []scan.Rule{
	{ID: RuleVulnerable, Severity: scan.High, Title: "a dependency has a known vulnerability",
		Fix: "upgrade the module to the fixed version the finding names (go get MODULE@VERSION), rebuild and deploy"},
	{ID: RuleUnverifiable, Severity: scan.Info, Title: "a module's dependencies cannot be known",
		Fix: "build the function from source with Aegis (aegis build), or keep the list of what the module contains and check it yourself"},
}

// Rules lists the rules this check reports.
func Rules() []scan.Rule { return append([]scan.Rule(nil), rules...) }

// ErrNoDB: no database was named.
var ErrNoDB = errors.New("no vulnerability database: --vulndb DIR|URL")

// scanTimeout bounds one govulncheck run; maxOutput the output read.
const (
	scanTimeout = 5 * time.Minute
	maxOutput   = 64 << 20
)

// dbURL turns a directory into a file:// URL and checks a URL's scheme.
func dbURL(db string) (string, error) {
	switch {
	case db == "":
		return "", ErrNoDB
	case strings.HasPrefix(db, "http://"), strings.HasPrefix(db, "https://"), strings.HasPrefix(db, "file://"):
		return db, nil
	case strings.Contains(db, "://"):
		return "", fmt.Errorf("vulnerability database %s: want a directory or an http(s) URL", db)
	}
	abs, err := filepath.Abs(db)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(filepath.Join(abs, "index", "modules.json")); err != nil || fi.IsDir() {
		return "", fmt.Errorf("vulnerability database %s: no index/modules.json: not an OSV database in the vuln.go.dev layout", db)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

// goModule is a Go module of the app: its go.mod and the functions whose
// packages are in it.
type goModule struct {
	root, path string // directory, module path
	gomod      []byte
	functions  map[string]string // function → its package's import path
}

// Check looks up the dependencies of every Go function of app in db.
// Functions whose source is a .wasm file are checked as modules
// (CheckModule); sources with no go.mod (C) are reported unverifiable.
func Check(ctx context.Context, app *scan.App, db string) ([]scan.Finding, error) {
	u, err := dbURL(db)
	if err != nil {
		return nil, err
	}
	modules := map[string]*goModule{}
	var out []scan.Finding
	for _, fn := range slices.Sorted(maps.Keys(app.Sources)) {
		src := app.Sources[fn]
		if strings.HasSuffix(src, ".wasm") {
			wasm, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", app.Rel(src), err)
			}
			found, err := CheckModule(ctx, fn, wasm, db)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
			continue
		}
		// What the source is decides, not a go.mod above it: a C or Rust
		// function often sits inside a Go repository.
		if isFile(filepath.Join(src, "Cargo.toml")) {
			out = append(out, unverifiable(fn, app.Rel(src), "its source is a Rust crate: Aegis does not check a crate's dependencies (Cargo.lock) against the database"))
			continue
		}
		root := ""
		if hasGoFiles(src) {
			root = findGoMod(src)
		}
		if root == "" {
			out = append(out, unverifiable(fn, app.Rel(src), "its source is not a Go package in a module (no .go files, or no go.mod): the dependencies of C or other sources are not known to Aegis"))
			continue
		}
		m, ok := modules[root]
		if !ok {
			gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
			if err != nil {
				return nil, err
			}
			m = &goModule{root: root, path: modulePath(gomod), gomod: gomod, functions: map[string]string{}}
			modules[root] = m
		}
		rel, err := filepath.Rel(root, src)
		if err != nil {
			return nil, err
		}
		pkg := m.path
		if rel != "." {
			pkg += "/" + filepath.ToSlash(rel)
		}
		m.functions[fn] = pkg
	}
	for _, root := range slices.Sorted(maps.Keys(modules)) {
		found, err := checkSource(ctx, app, modules[root], u)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// hasGoFiles reports whether dir holds a Go source file.
func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

func findGoMod(dir string) string {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func modulePath(gomod []byte) string {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// requireLine is the 1-based line of go.mod naming module path, 0 when
// none does.
func requireLine(gomod []byte, path string) int {
	for i, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require"))
		if len(f) >= 2 && f[0] == path {
			return i + 1
		}
	}
	return 0
}

// message is one line of govulncheck -format json.
type message struct {
	OSV     *entry `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

// entry is what Aegis reads of an OSV entry.
type entry struct {
	ID               string `json:"id"`
	Summary          string `json:"summary"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

func (e *entry) severity() scan.Severity {
	switch strings.ToUpper(e.DatabaseSpecific.Severity) {
	case "CRITICAL":
		return scan.Critical
	case "HIGH":
		return scan.High
	case "MODERATE", "MEDIUM":
		return scan.Medium
	case "LOW":
		return scan.Low
	}
	return scan.High // no severity: high, as the gate's rule says
}

// use is what govulncheck found of one vulnerability: the module version,
// the fix, and the call traces that reach it, by the caller's package.
type use struct {
	module, version, fixed string
	calls                  map[string]string // user package → "pkg.Func called from file:line"
}

func checkSource(ctx context.Context, app *scan.App, m *goModule, db string) ([]scan.Finding, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("checking the dependencies of Go functions needs the Go toolchain (go on PATH): %w", err)
	}
	// The packages are loaded as aegis build compiles them: for wasip1,
	// with the SDK the binary carries first in GOPROXY (a function made
	// by aegis new requires it from there).
	env, err := sdkproxy.GoEnv(ctx, goBin, os.Environ())
	if err != nil {
		env = os.Environ()
	}
	env = append(env, "GOOS=wasip1", "GOARCH=wasm")
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	args := []string{"-C", m.root, "-db", db, "-format", "json", "-scan", "symbol"}
	pkgs := make([]string, 0, len(m.functions))
	for _, p := range m.functions {
		if !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	slices.Sort(pkgs)
	args = append(args, pkgs...)
	var stdout, stderr bytes.Buffer
	cmd := govulncheck.Command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &limitedWriter{w: &stdout, n: maxOutput}, &limitedWriter{w: &stderr, n: 64 << 10}
	cmd.Stdin, cmd.Env = strings.NewReader(""), env
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("check %s: %w", app.Rel(m.root), err)
	}
	if err := cmd.Wait(); err != nil {
		// With -format json, vulnerabilities found are not an error.
		return nil, fmt.Errorf("check the dependencies of %s: %w: %s", app.Rel(filepath.Join(m.root, "go.mod")), err, strings.TrimSpace(stderr.String()))
	}
	entries := map[string]*entry{}
	uses := map[string]*use{}
	dec := json.NewDecoder(bufio.NewReader(&stdout))
	for {
		var msg message
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read govulncheck's output: %w", err)
		}
		if msg.OSV != nil {
			entries[msg.OSV.ID] = msg.OSV
		}
		f := msg.Finding
		if f == nil || len(f.Trace) == 0 {
			continue
		}
		u := uses[f.OSV]
		if u == nil {
			u = &use{calls: map[string]string{}}
			uses[f.OSV] = u
		}
		top := f.Trace[0]
		u.module, u.version = top.Module, top.Version
		if f.FixedVersion != "" {
			u.fixed = f.FixedVersion
		}
		if top.Function == "" || len(f.Trace) < 2 {
			continue // a module or package level finding
		}
		entryPoint := f.Trace[len(f.Trace)-1]
		where := ""
		if p := entryPoint.Position; p != nil && p.Filename != "" {
			where = fmt.Sprintf(" (%s:%d)", app.Rel(p.Filename), p.Line)
		}
		u.calls[entryPoint.Package] = fmt.Sprintf("%s called from %s%s", symbol(top), symbol(entryPoint), where)
	}
	// govulncheck hands back entries as it models them, without the
	// database_specific severity; the database has it.
	if len(uses) > 0 {
		src, err := openDB(db)
		if err != nil {
			return nil, err
		}
		for id := range uses {
			if strings.ContainsAny(id, "/\\.") {
				continue
			}
			if b, err := src.read(ctx, "ID/"+id); err == nil {
				var e entry
				if json.Unmarshal(b, &e) == nil && e.ID == id {
					entries[id] = &e
				}
			}
		}
	}
	var out []scan.Finding
	gomodRel := app.Rel(filepath.Join(m.root, "go.mod"))
	for _, id := range slices.Sorted(maps.Keys(uses)) {
		u := uses[id]
		e := entries[id]
		if e == nil {
			e = &entry{ID: id}
		}
		fix := rules[0].Fix
		if u.fixed != "" {
			fix = fmt.Sprintf("go get %s@%s, rebuild and deploy", u.module, u.fixed)
		}
		for _, fn := range slices.Sorted(maps.Keys(m.functions)) {
			sev := e.severity()
			summary := e.Summary
			if summary != "" {
				summary = ": " + summary
			}
			msg := fmt.Sprintf("%s %s has %s%s; ", u.module, u.version, id, summary)
			if call, ok := u.calls[m.functions[fn]]; ok {
				msg += "called: " + call
			} else {
				msg += "the function depends on it but does not call the vulnerable code"
				sev = max(scan.Low, sev-1)
			}
			out = append(out, scan.Finding{ID: id, Rule: RuleVulnerable, Severity: sev, Function: fn,
				File: gomodRel, Line: requireLine(m.gomod, u.module), Message: msg, Fix: fix})
		}
	}
	return out, nil
}

func symbol(f frame) string {
	pkg := f.Package
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	if f.Receiver != "" {
		return pkg + "." + strings.TrimPrefix(f.Receiver, "*") + "." + f.Function
	}
	return pkg + "." + f.Function
}

func unverifiable(fn, file, why string) scan.Finding {
	return scan.Finding{ID: RuleUnverifiable + ":" + fn, Rule: RuleUnverifiable, Severity: scan.Info, Function: fn,
		File: file, Message: why, Fix: rules[1].Fix}
}

// limitedWriter keeps at most n bytes and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	l.n -= int64(len(q))
	if _, err := l.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
