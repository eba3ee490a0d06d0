package rulefile

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/aegis-platform/aegis/internal/guard"
)

// FuzzParse feeds arbitrary bytes to Parse, which reads files from
// outside. Parse must never panic; every line an error names is in the
// file; the rules it accepts are valid, distinct and at most
// guard.MaxRules; and Format writes them so that Parse reads back the
// same rules. The seed corpus is testdata/fuzz/FuzzParse and the files
// below.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add(Format(guard.DefaultRules()))
	f.Add([]byte("rules:\n  - name: a\n    when: {signal: [trap, timeout], group_by: function, threshold: 0x10, window: 1h30m, baseline: 2.5}\n    then: [{action: alert, duration: 1h}, {action: quarantine_function, duration: 5m}]\n"))
	f.Add([]byte("rules:\n  - &a {name: a, disabled: true}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := Parse("fuzz.yaml", data)
		if err != nil {
			if rules != nil {
				t.Fatal("Parse returned both rules and an error")
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not Errors", err)
			}
			for _, e := range list {
				if e.Line < 0 || e.Line > lines {
					t.Fatalf("error at line %d of a %d-line file: %v", e.Line, lines, e)
				}
			}
			return
		}
		if len(rules) > guard.MaxRules {
			t.Fatalf("%d rules accepted", len(rules))
		}
		names := map[string]bool{}
		for _, r := range rules {
			if err := r.Validate(); err != nil {
				t.Fatalf("accepted an invalid rule: %v", err)
			}
			if names[r.Name] {
				t.Fatalf("accepted rule %q twice", r.Name)
			}
			names[r.Name] = true
		}
		text := Format(rules)
		back, err := Parse("formatted.yaml", text)
		if err != nil {
			t.Fatalf("Parse(Format(rules)): %v\n%s", err, text)
		}
		if !reflect.DeepEqual(normal(back), normal(rules)) {
			t.Fatalf("Format, then Parse, changed the rules:\nbefore %+v\nafter  %+v\nfile:\n%s", rules, back, text)
		}
	})
}
