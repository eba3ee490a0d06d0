package repocheck

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/aegis-platform/aegis"

// unlisted are the project's packages nearly everything imports, which the
// map leaves out of its "uses" column to keep it readable: the root
// sentinel errors and the request-id and log-key helpers.
var unlisted = map[string]bool{"": true, "telemetry": true, "telemetry/logkey": true}

var backticked = regexp.MustCompile("`([^`]+)`")

// TestArchitectureUsesColumn checks every row of ARCHITECTURE.md's map of
// internal packages against what the package's non-test files import: a
// "uses" cell names exactly the project's packages it imports (apart from
// those in unlisted), so the map cannot drift from the code. A cell saying
// "all below" or "everything" is not checked. Every internal package with
// non-test code must have a row.
func TestArchitectureUsesColumn(t *testing.T) {
	f, err := os.Open(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]string{} // package (as the map names it) → uses cell
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 5 { // "", name, owns, uses, ""
			continue
		}
		m := backticked.FindStringSubmatch(cells[1])
		if m == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "internal", m[1])); err == nil {
			rows[m[1]] = cells[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	for _, pkg := range internalPackages(t) {
		cell, ok := rows[pkg]
		if !ok {
			t.Errorf("internal/%s has no row in ARCHITECTURE.md's map", pkg)
			continue
		}
		if strings.Contains(cell, "all below") || strings.Contains(cell, "everything") {
			continue
		}
		imports := projectImports(t, pkg)
		var listed []string
		for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
			if isProjectPackage(m[1]) {
				listed = append(listed, m[1])
			}
		}
		for _, imp := range imports {
			if !slices.Contains(listed, imp) {
				t.Errorf("internal/%s imports %s, which its row's \"uses\" does not name", pkg, imp)
			}
		}
		for _, l := range listed {
			if !slices.Contains(imports, l) {
				t.Errorf("internal/%s: its row's \"uses\" names %s, which it does not import", pkg, l)
			}
		}
	}
}

// internalPackages lists the directories under internal/ with non-test Go
// files, as the map names them ("testkit/memkv").
func internalPackages(t *testing.T) []string {
	t.Helper()
	var pkgs []string
	base := filepath.Join(root, "internal")
	err := filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if goFiles(t, path) != nil {
			rel, _ := filepath.Rel(base, path)
			pkgs = append(pkgs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			files = append(files, filepath.Join(dir, n))
		}
	}
	return files
}

// projectImports returns the project's packages pkg imports, as the map
// names them: "registry" for internal/registry, "manifest" for the public
// manifest package; unlisted ones left out.
func projectImports(t *testing.T, pkg string) []string {
	t.Helper()
	fset := token.NewFileSet()
	var out []string
	for _, file := range goFiles(t, filepath.Join(root, "internal", pkg)) {
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			name := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(p, module), "/"), "internal/")
			if !unlisted[name] && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// isProjectPackage reports whether a name in a "uses" cell is one of the
// project's packages (and not, say, an interface named in passing).
func isProjectPackage(name string) bool {
	if _, err := os.Stat(filepath.Join(root, "internal", name)); err == nil {
		return true
	}
	_, err := os.Stat(filepath.Join(root, name, "doc.go"))
	if err == nil {
		return true
	}
	matches, _ := filepath.Glob(filepath.Join(root, name, "*.go"))
	return len(matches) > 0 && !strings.Contains(name, ".")
}
