package rulefile

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/guard"
)

// example is the file of docs/guard.md, "The rule file".
const example = `rules:
  - name: brute_force            # a default's name replaces that default
    when: {signal: auth_failure, group_by: address, threshold: 20, window: 1m}
    then:
      - {action: block_address, duration: 15m}
  - name: compromised_function
    when: {signal: [permission_denied], group_by: function, threshold: 10, window: 1m}
    then: [{action: alert}, {action: quarantine_function, duration: 15m}]
  - name: spend_spike
    when: {signal: invocation, group_by: function, threshold: 600, window: 1m, baseline: 10, measure: count}
    then: [{action: alert}, {action: throttle, duration: 15m}]
  - name: gb_spike
    when: {signal: invocation, group_by: function, threshold: 50, window: 5m, measure: gb_seconds}
    then:
      - action: alert
        duration: 1h
  - name: new_call_path
    when: {signal: new_edge, group_by: edge, threshold: 0, window: 1m, learning: 10m}
    then: [{action: alert}]
  - name: shadow_api
    disabled: true
`

func TestParseExample(t *testing.T) {
	rules, err := Parse("guard.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	const m = time.Minute
	want := []guard.Rule{
		{Name: "brute_force", Signals: []guard.Signal{guard.AuthFailure}, GroupBy: guard.ByAddress, Threshold: 20, Window: m,
			Then: []guard.Action{{Kind: guard.ActBlockAddress, Duration: 15 * m}}},
		{Name: "compromised_function", Signals: []guard.Signal{guard.PermissionDenied}, GroupBy: guard.ByFunction, Threshold: 10, Window: m,
			Then: []guard.Action{{Kind: guard.ActAlert, Duration: guard.DefaultIncident}, {Kind: guard.ActQuarantine, Duration: 15 * m}}},
		{Name: "spend_spike", Signals: []guard.Signal{guard.Invocation}, GroupBy: guard.ByFunction, Threshold: 600, Window: m, Baseline: 10,
			Then: []guard.Action{{Kind: guard.ActAlert, Duration: guard.DefaultIncident}, {Kind: guard.ActThrottle, Duration: 15 * m}}},
		{Name: "gb_spike", Signals: []guard.Signal{guard.Invocation}, GroupBy: guard.ByFunction, Threshold: 50, Window: 5 * m, GBSeconds: true,
			Then: []guard.Action{{Kind: guard.ActAlert, Duration: time.Hour}}},
		{Name: "new_call_path", Signals: []guard.Signal{guard.NewEdge}, GroupBy: guard.ByEdge, Threshold: 0, Window: m, Learning: 10 * m,
			Then: []guard.Action{{Kind: guard.ActAlert, Duration: guard.DefaultIncident}}},
		{Name: "shadow_api", Disabled: true},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", rules, want)
	}
	roundTrip(t, rules)
}

// The defaults, written out by Format, read back as they are.
func TestFormatDefaults(t *testing.T) {
	roundTrip(t, guard.DefaultRules())
	out := string(Format(guard.DefaultRules()))
	for _, want := range []string{
		"  - name: brute_force\n    when: {signal: auth_failure, group_by: address, threshold: 20, window: 1m}\n    then:\n      - {action: block_address, duration: 15m}\n",
		"signal: [auth_failure, rate_limited, budget_refused, schema_violation]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Format(DefaultRules()) lacks %q:\n%s", want, out)
		}
	}
	if got := string(Format(nil)); got != "rules: []\n" {
		t.Errorf("Format(nil) = %q", got)
	}
	if rules, err := Parse("guard.yaml", Format(nil)); err != nil || len(rules) != 0 {
		t.Errorf("Parse(Format(nil)) = %v, %v", rules, err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
		time.Hour + time.Second: "1h0m1s", 500 * time.Millisecond: "500ms", 0: "0s", 7 * 24 * time.Hour: "168h",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("%q reads back as %v, %v", FormatDuration(d), back, err)
		}
	}
}

// A rule named like a YAML keyword is quoted, so it reads back a name.
func TestFormatQuotesKeywords(t *testing.T) {
	rules := []guard.Rule{{Name: "null", Disabled: true}, {Name: "true", Disabled: true}, {Name: "on", Disabled: true}}
	out := Format(rules)
	if !bytes.Contains(out, []byte(`name: "null"`)) || !bytes.Contains(out, []byte(`name: "true"`)) {
		t.Errorf("keywords not quoted:\n%s", out)
	}
	roundTrip(t, rules)
}

// roundTrip checks Format(rules) parses back to rules.
func roundTrip(t *testing.T, rules []guard.Rule) {
	t.Helper()
	text := Format(rules)
	back, err := Parse("formatted.yaml", text)
	if err != nil {
		t.Fatalf("Parse(Format(rules)): %v\n%s", err, text)
	}
	if !reflect.DeepEqual(normal(back), normal(rules)) {
		t.Fatalf("Format, then Parse, changed the rules:\nbefore %+v\nafter  %+v\nfile:\n%s", rules, back, text)
	}
}

// normal makes empty slices nil, the one difference a round trip may
// make.
func normal(rules []guard.Rule) []guard.Rule {
	out := make([]guard.Rule, len(rules))
	for i, r := range rules {
		if len(r.Signals) == 0 {
			r.Signals = nil
		}
		if len(r.Then) == 0 {
			r.Then = nil
		}
		out[i] = r
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// TestParseErrors: every problem names the file, its line and its field.
func TestParseErrors(t *testing.T) {
	const ok = "    when: {signal: auth_failure, group_by: address, threshold: 5, window: 1m}\n    then: [{action: alert}]\n"
	for _, tc := range []struct {
		name, file string
		want       []string // each error, in order
	}{
		{"threshold out of range", "rules:\n  - name: a\n    when: {signal: auth_failure, group_by: address, threshold: -1, window: 1m}\n    then: [{action: alert}]\n",
			[]string{"guard.yaml:3: rules[0].when.threshold: must be 0 to 1000000"}},
		{"threshold of the second rule, block style", "rules:\n  - name: a\n" + ok + "  - name: b\n    when:\n      signal: auth_failure\n      group_by: address\n      threshold: 2000000\n      window: 1m\n    then: [{action: alert}]\n",
			[]string{"guard.yaml:9: rules[1].when.threshold: must be 0 to 1000000"}},
		{"threshold not a number", "rules:\n  - name: a\n    when:\n      threshold: twenty\n",
			[]string{`guard.yaml:4: rules[0].when.threshold: expected a whole number, got "twenty"`}},
		{"threshold a float", "rules:\n  - name: a\n    when: {threshold: 2.5}\n",
			[]string{`guard.yaml:3: rules[0].when.threshold: expected a whole number, got "2.5"`}},
		{"window missing: at its when", "rules:\n  - name: a\n    when: {signal: auth_failure, group_by: address, threshold: 5}\n    then: [{action: alert}]\n",
			[]string{"guard.yaml:3: rules[0].when.window: must be above 0 and at most 24h0m0s"}},
		{"window without a unit", "rules:\n  - name: a\n    when: {window: 60}\n",
			[]string{`guard.yaml:3: rules[0].when.window: invalid duration "60": a Go duration such as 90s, 15m or 1h`}},
		{"window a mapping", "rules:\n  - name: a\n    when:\n      window: {minutes: 1}\n",
			[]string{"guard.yaml:4: rules[0].when.window: expected a duration such as 15m, got a mapping"}},
		{"unknown signal in a list", "rules:\n  - name: a\n    when:\n      signal:\n        - auth_failure\n        - auth_failures\n",
			[]string{`guard.yaml:6: rules[0].when.signal[1]: unknown signal "auth_failures" (one of auth_failure, route_miss,`}},
		{"signal twice", "rules:\n  - name: a\n    when: {signal: [trap, trap]}\n",
			[]string{"guard.yaml:3: rules[0].when.signal[1]: trap named twice"}},
		{"bad group_by", "rules:\n  - name: a\n    when: {signal: trap, group_by: app, threshold: 1, window: 1m}\n    then: [{action: alert}]\n",
			[]string{`guard.yaml:3: rules[0].when.group_by: "app" is not one of address, key, function, route, edge`}},
		{"bad measure", "rules:\n  - name: a\n    when: {measure: seconds}\n",
			[]string{`guard.yaml:3: rules[0].when.measure: "seconds" is not count or gb_seconds`}},
		{"gb_seconds on another signal", "rules:\n  - name: a\n    when: {signal: trap, group_by: function, threshold: 1, window: 1m, measure: gb_seconds}\n    then: [{action: alert}]\n",
			[]string{"guard.yaml:3: rules[0].when.measure: gb_seconds is measured on the invocation signal alone"}},
		{"unknown field of when", "rules:\n  - name: a\n    when:\n      signal: trap\n      thresold: 5\n",
			[]string{`guard.yaml:5: rules[0].when: unknown field "thresold" (fields: signal, group_by, threshold, window, baseline, measure, learning)`}},
		{"unknown field of a rule", "rules:\n  - name: a\n    action: alert\n",
			[]string{`guard.yaml:3: rules[0]: unknown field "action" (fields: name, disabled, when, then)`}},
		{"unknown top-level field", "rule:\n  - name: a\n",
			[]string{`guard.yaml:1: unknown field "rule" (fields: rules)`}},
		{"duplicate key", "rules:\n  - name: a\n    when: {threshold: 1, threshold: 2}\n",
			[]string{"guard.yaml:3: rules[0].when.threshold: duplicate key (first at line 3)"}},
		{"rule named twice", "rules:\n  - name: a\n" + ok + "  - name: a\n" + ok,
			[]string{`guard.yaml:5: rules[1].name: rule "a" is named twice (first at line 2)`}},
		{"no name", "rules:\n  - disabled: true\n",
			[]string{"guard.yaml:2: rules[0].name: missing: every rule has a name"}},
		{"bad name", "rules:\n  - name: Brute-Force\n    disabled: true\n",
			[]string{"guard.yaml:2: rules[0].name: must be 1 to 64 of a-z, 0-9 and _, starting with a letter"}},
		{"name not a string", "rules:\n  - name: 12\n",
			[]string{`guard.yaml:2: rules[0].name: expected a string, got "12"`}},
		{"disabled not a bool", "rules:\n  - name: a\n    disabled: yes\n",
			[]string{`guard.yaml:3: rules[0].disabled: expected true or false, got "yes"`}},
		{"no action", "rules:\n  - name: a\n    when: {signal: trap, group_by: function, threshold: 1, window: 1m}\n",
			[]string{"guard.yaml:2: rules[0].then: names no action"}},
		{"action missing", "rules:\n  - name: a\n    when: {signal: trap, group_by: function, threshold: 1, window: 1m}\n    then:\n      - duration: 5m\n",
			[]string{"guard.yaml:5: rules[0].then[0].action: missing: one of alert, block_address"}},
		{"unknown action", "rules:\n  - name: a\n    when: {signal: trap, group_by: function, threshold: 1, window: 1m}\n    then:\n      - {action: alert}\n      - {action: kill, duration: 5m}\n",
			[]string{`guard.yaml:6: rules[0].then[1].action: "kill" is not one of alert, block_address`}},
		{"duration missing", "rules:\n  - name: a\n    when: {signal: trap, group_by: function, threshold: 1, window: 1m}\n    then:\n      - {action: throttle}\n",
			[]string{"guard.yaml:5: rules[0].then[0].duration: missing: how long throttle lasts, such as 15m"}},
		{"duration too long", "rules:\n  - name: a\n    when: {signal: trap, group_by: function, threshold: 1, window: 1m}\n    then:\n      - action: throttle\n        duration: 200h\n",
			[]string{"guard.yaml:6: rules[0].then[0].duration: must be above 0 and at most 168h0m0s"}},
		{"action needs another grouping", "rules:\n  - name: a\n    when: {signal: auth_failure, group_by: key, threshold: 1, window: 1m}\n    then: [{action: block_address, duration: 1m}]\n",
			[]string{"guard.yaml:4: rules[0].then[0].action: block_address needs signals grouped by address, not key"}},
		{"then not a list", "rules:\n  - name: a\n    then: {action: alert}\n",
			[]string{"guard.yaml:3: rules[0].then: expected a list of actions, got a mapping"}},
		{"rules not a list", "rules: {name: a}\n",
			[]string{"guard.yaml:1: rules: expected a list of rules, got a mapping"}},
		{"a rule not a mapping", "rules:\n  - brute_force\n",
			[]string{`guard.yaml:2: rules[0]: expected a mapping, got "brute_force"`}},
		{"no rules key", "# nothing but a comment\n{}\n",
			[]string{"guard.yaml:2: rules: missing"}},
		{"empty", "", []string{"guard.yaml: the file is empty"}},
		{"only a comment", "# rules: []\n", []string{"guard.yaml: the file is empty"}},
		{"anchor and alias", "rules:\n  - &bf\n    name: a\n    disabled: true\n  - *bf\n",
			[]string{"guard.yaml:2: rules[0]: YAML anchors are not supported", "guard.yaml:5: rules[1]: YAML aliases are not supported"}},
		{"alias as a value", "rules:\n  - name: a\n    when: {window: &w 1m}\n  - name: b\n    when: {window: *w}\n",
			[]string{"guard.yaml:3: rules[0].when.window: YAML anchors are not supported", "guard.yaml:5: rules[1].when.window: YAML aliases are not supported"}},
		{"merge key", "rules:\n  - name: a\n    <<: {disabled: true}\n",
			[]string{"guard.yaml:3: rules[0]: mapping keys must be plain names"}},
		{"custom tag", "rules:\n  - name: !rule a\n",
			[]string{`guard.yaml:2: rules[0].name: unsupported YAML tag "!rule"`}},
		{"binary tag", "rules: !!binary cnVsZXM=\n",
			[]string{`guard.yaml:1: rules: unsupported YAML tag "!!binary"`}},
		{"two documents", "rules: []\n---\nrules: []\n", []string{"guard.yaml:2: a rule file is a single YAML document"}},
		{"syntax error", "rules:\n  - name: a\n   when: {\n", []string{"guard.yaml:"}},
		{"two problems in one file", "rules:\n  - name: a\n    when: {threshold: x}\n  - name: b\n    then: [{action: alert, duration: soon}]\n",
			[]string{`guard.yaml:3: rules[0].when.threshold: expected a whole number, got "x"`,
				`guard.yaml:5: rules[1].then[0].duration: invalid duration "soon"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := Parse("guard.yaml", []byte(tc.file))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", rules)
			}
			if rules != nil {
				t.Errorf("Parse returned rules with its error: %+v", rules)
			}
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("%v is not ErrInvalidArgument", err)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("%T is not Errors", err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(list), len(tc.want), err)
			}
			for i, e := range list {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, e, tc.want[i])
				}
			}
		})
	}
}

// Limits: the file's size and its number of rules.
func TestParseLimits(t *testing.T) {
	big := append([]byte("rules: []\n# "), bytes.Repeat([]byte("x"), MaxSize)...)
	if _, err := Parse("guard.yaml", big); err == nil || !strings.Contains(err.Error(), "at most 65536 bytes") {
		t.Errorf("a file above MaxSize: %v", err)
	}
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range guard.MaxRules + 1 {
		b.WriteString("  - {name: r" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ", disabled: true}\n")
	}
	if _, err := Parse("guard.yaml", []byte(b.String())); err == nil || !strings.Contains(err.Error(), "guard.yaml:2: rules: 65 rules, at most 64") {
		t.Errorf("65 rules: %v", err)
	}
	// Errors are capped, the rest counted.
	b.Reset()
	b.WriteString("rules:\n")
	for range 60 {
		b.WriteString("  - {}\n")
	}
	_, err := Parse("guard.yaml", []byte(b.String()))
	var list Errors
	if !errors.As(err, &list) || len(list) != maxErrors+1 || !strings.Contains(list[maxErrors].Msg, "10 more errors not shown") {
		t.Errorf("60 bad rules: %d errors, last %v", len(list), list[len(list)-1])
	}
}

// A hostile value is not echoed whole.
func TestParseErrorsCutLongValues(t *testing.T) {
	long := strings.Repeat("a", 10000)
	_, err := Parse("guard.yaml", []byte("rules:\n  - name: a\n    when: {signal: "+long+"}\n"))
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("error of %d bytes: %.300v", len(err.Error()), err)
	}
}

func TestAppliedRecord(t *testing.T) {
	at := time.Date(2026, 12, 4, 20, 31, 43, 0, time.UTC)
	a := Applied{File: example, By: "root", At: at}
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalApplied(b)
	if err != nil || back != a {
		t.Fatalf("read back %+v, %v", back, err)
	}
	for _, bad := range []string{`{"file":"x","by":"root","at":"2026-12-04T20:31:43Z","extra":1}`, `{"file":"x"} {}`, `[]`} {
		if _, err := UnmarshalApplied([]byte(bad)); err == nil {
			t.Errorf("UnmarshalApplied(%s) accepted it", bad)
		}
	}
}

func TestChanges(t *testing.T) {
	defaults := guard.DefaultRules()
	file, err := Parse("guard.yaml", []byte(`rules:
  - name: brute_force
    when: {signal: auth_failure, group_by: address, threshold: 5, window: 2m}
    then: [{action: block_address, duration: 1h}]
  - name: shadow_api
    disabled: true
  - name: trap_storm
    when: {signal: trap, group_by: function, threshold: 100, window: 1m}
    then: [{action: alert}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := Changes(defaults, guard.Merge(defaults, file))
	want := []string{
		"brute_force changed [when.threshold: 20 → 5 when.window: 1m → 2m then: block_address 15m → block_address 1h]",
		"shadow_api disabled []",
		"trap_storm added []",
	}
	if len(got) != len(want) {
		t.Fatalf("changes %+v", got)
	}
	for i, c := range got {
		if s := c.Rule + " " + c.Change + " " + strings.Join(strings.Fields("["+strings.Join(c.Fields, " ")+"]"), " "); s != want[i] {
			t.Errorf("change %d:\n got %s\nwant %s", i, s, want[i])
		}
	}
	// Applying the defaults again after it removes the added rule and
	// changes the others back.
	back := Changes(guard.Merge(defaults, file), defaults)
	if len(back) != 3 || back[0].Change != "changed" || back[1].Change != "enabled" || back[2].Rule != "trap_storm" || back[2].Change != "removed" {
		t.Errorf("back to the defaults: %+v", back)
	}
	if c := Changes(defaults, defaults); len(c) != 0 {
		t.Errorf("no change: %+v", c)
	}
}

// The admin API's shape of a rule reads back as the rule.
func TestAPIRoundTrip(t *testing.T) {
	rules, err := Parse("guard.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(rules, guard.DefaultRules()...) {
		back, err := FromAPI(ToAPI(r, SourceFile))
		if err != nil || !reflect.DeepEqual(normal([]guard.Rule{back}), normal([]guard.Rule{r})) {
			t.Errorf("FromAPI(ToAPI(%+v)) = %+v, %v", r, back, err)
		}
	}
	eff := Effective(guard.DefaultRules(), SourceDefault, rules)
	for _, r := range eff {
		want := SourceDefault
		if r.Name != "key_abuse" {
			want = SourceFile
		}
		if r.Source != want {
			t.Errorf("rule %s from %q, want %q", r.Name, r.Source, want)
		}
	}
	if len(eff) != 7 || eff[6].Name != "gb_spike" {
		t.Errorf("effective rules: %+v", eff)
	}
}
