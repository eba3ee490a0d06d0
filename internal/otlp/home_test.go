package otlp

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyHomeOfTheSDK: no other package of the project imports the
// OpenTelemetry SDK or API (go.opentelemetry.io/otel...); the others hand
// their spans over as telemetry.SpanRecord. The loopback collector of the
// tests (testkit/otlptest) reads the wire format (go.opentelemetry.io/proto),
// which is not the SDK.
func TestOnlyHomeOfTheSDK(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(root, "internal", "otlp")
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || filepath.Dir(path) == home {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "go.opentelemetry.io/otel" || strings.HasPrefix(p, "go.opentelemetry.io/otel/") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s: only internal/otlp may", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files; is the root %s right?", checked, root)
	}
}
