package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// loggerMethods take a message and then alternating keys and values (or
// slog.Attr values); the index is where the first key is.
var loggerMethods = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"Log": 3, "With": 0,
}

// attrConstructors are slog's functions whose first argument is a key.
var attrConstructors = map[string]bool{
	"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true,
	"Bool": true, "Time": true, "Duration": true, "Any": true, "Group": true,
}

// TestLogKeysComeFromLogkey fails on any log key written as a string
// literal in non-test code: slog.String("request_id", …), or a literal at
// a key position of a logger call (logger.Info("msg", "err", err)). The
// keys live in internal/telemetry/logkey.
func TestLogKeysComeFromLogkey(t *testing.T) {
	var found []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", ".git", "node_modules", "bench":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		found = append(found, literalKeys(fset, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: use a constant of internal/telemetry/logkey", strings.TrimPrefix(f, root+string(os.PathSeparator)))
	}
}

// literalKeys returns where f writes a log key as a string literal.
func literalKeys(fset *token.FileSet, f *ast.File) []string {
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if isSlog(sel) {
			if attrConstructors[sel.Sel.Name] && len(call.Args) > 0 && isStringLit(call.Args[0]) {
				found = append(found, fset.Position(call.Args[0].Pos()).String()+": slog."+sel.Sel.Name+"("+litValue(call.Args[0])+", …)")
			}
			return true
		}
		first, ok := loggerMethods[sel.Sel.Name]
		if !ok || len(call.Args) <= first {
			return true
		}
		if first > 0 && !isStringLit(call.Args[first-1]) && sel.Sel.Name != "Log" {
			// Not a logger's message: some other Info or Error method.
			return true
		}
		for i := first; i < len(call.Args); i += 2 {
			arg := call.Args[i]
			if isStringLit(arg) {
				found = append(found, fset.Position(arg.Pos()).String()+": key "+litValue(arg))
				continue
			}
			if isAttr(arg) {
				i-- // an Attr takes one place, not two
			}
		}
		return true
	})
	return found
}

func isStringLit(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING
}

func litValue(e ast.Expr) string { return e.(*ast.BasicLit).Value }

// isAttr reports an argument built by slog.String(…) and its kind, which
// takes one place in a logger's arguments.
func isAttr(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && isSlog(sel) && attrConstructors[sel.Sel.Name]
}

// isSlog reports a selector of package slog itself (slog.String), not of
// a logger.
func isSlog(sel *ast.SelectorExpr) bool {
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "slog"
}

// The check finds each way of writing a literal key, and passes keys from
// logkey and messages that merely look like keys.
func TestLiteralKeysFindsLiterals(t *testing.T) {
	src := `package p

func f() {
	log.Info("started", "request_id", id)
	log.Warn("denied", logkey.App, app, "err", err)
	log.LogAttrs(ctx, slog.LevelWarn, "x", slog.String("remote", addr), slog.Bool(logkey.Security, true))
	log.With("stream", s)
	log.Info("fine", logkey.RequestID, id, slog.Int(logkey.Hop, 1), logkey.App, app)
	b.Error("not a logger")
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := literalKeys(fset, f)
	want := []string{`p.go:4:22: key "request_id"`, `p.go:5:38: key "err"`, `p.go:6:53: slog.String("remote", …)`, `p.go:7:11: key "stream"`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
