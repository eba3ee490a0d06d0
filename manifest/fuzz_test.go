package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Parse must never panic, and a
// manifest it accepts must survive the JSON round trip the server relies on
// and still validate afterwards. The seed corpus is every manifest in
// testdata plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Budgets: a float amount, a byte size, a window and a mode.
	f.Add([]byte("app: a\nbudget: { per: day, invocations: 10, gb_seconds: 2.5, egress: 1GiB, mode: alert }\nfunctions:\n  f:\n    source: ./f\n    budget: { per: hour, gb_seconds: 1e2 }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data)
		if err != nil {
			if m != nil {
				t.Fatal("Parse returned both a manifest and an error")
			}
			// Every line an error names is in the file (problemLine
			// searches within it).
			lines := bytes.Count(data, []byte("\n")) + 1
			var list Errors
			if errors.As(err, &list) {
				for _, e := range list {
					if e.Line < 0 || e.Line > lines {
						t.Fatalf("error at line %d of a %d-line file: %v", e.Line, lines, e)
					}
				}
			}
			return
		}
		roundTrip(t, m)
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest fails Validate: %v", err)
		}
		d := m.WithDefaults()
		if err := d.Validate(); err != nil {
			t.Fatalf("manifest with defaults fails Validate: %v", err)
		}
		roundTrip(t, d)
	})
}

// roundTrip checks that m reads back from its JSON form unchanged.
func roundTrip(t *testing.T, m *Manifest) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var back Manifest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	if !reflect.DeepEqual(&back, m) {
		t.Fatalf("JSON round trip changed the manifest:\nbefore %+v\nafter  %+v\njson   %s", m, &back, b)
	}
}
