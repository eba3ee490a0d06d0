package manifest

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGoldenErrors parses each testdata/errors/*.yaml and compares the
// whole error text with the .golden file next to it, so a change in any
// message or line number shows up in review.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(file), data)
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", err.Error()+"\n")
		})
	}
}

// TestGoldenManifests parses each testdata/good/*.yaml and compares the
// manifest with defaults applied, as the server would store it, with the
// .json file next to it.
func TestGoldenManifests(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			m, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(m.WithDefaults(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".json", string(b)+"\n")
			roundTrip(t, m)
			roundTrip(t, m.WithDefaults())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./manifest -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test ./manifest -update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestDocExample parses the example in docs/manifest.md, so the reference
// cannot show a manifest that does not parse.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/manifest.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Example\n\n```yaml\n")
	if !ok {
		t.Fatal("docs/manifest.md has no example")
	}
	example, _, _ := strings.Cut(rest, "```")
	m, err := Parse("docs/manifest.md", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, m.FunctionNames(), []string{"health", "make-thumbnail", "nightly-report", "save-entry"})
}
