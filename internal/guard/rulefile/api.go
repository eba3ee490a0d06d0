package rulefile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/guard"
)

// Where a rule in force comes from (adminapi.GuardRule.Source).
const (
	SourceDefault       = "default"
	SourceFile          = "file"
	SourceConfiguration = "configuration"
)

// Effective is the rules in force with file applied on base, each named
// with its source: SourceFile for a rule the file names, baseSource for
// the others.
func Effective(base []guard.Rule, baseSource string, file []guard.Rule) []adminapi.GuardRule {
	merged := guard.Merge(base, file)
	out := make([]adminapi.GuardRule, len(merged))
	for i, r := range merged {
		src := baseSource
		if slices.ContainsFunc(file, func(f guard.Rule) bool { return f.Name == r.Name }) {
			src = SourceFile
		}
		out[i] = ToAPI(r, src)
	}
	return out
}

// ToAPI is r as the admin API shows it.
func ToAPI(r guard.Rule, source string) adminapi.GuardRule {
	out := adminapi.GuardRule{Name: r.Name, Disabled: r.Disabled, GroupBy: string(r.GroupBy), Threshold: r.Threshold,
		Baseline: r.Baseline, Source: source}
	for _, s := range r.Signals {
		out.Signals = append(out.Signals, s.String())
	}
	if r.Window != 0 {
		out.Window = r.Window.String()
	}
	if r.Learning != 0 {
		out.Learning = r.Learning.String()
	}
	if r.GBSeconds {
		out.Measure = measureGBSeconds
	} else if len(r.Signals) > 0 {
		out.Measure = measureCount
	}
	for _, a := range r.Then {
		out.Then = append(out.Then, adminapi.GuardAction{Action: string(a.Kind), Duration: a.Duration.String()})
	}
	return out
}

// FromAPI reads back a rule ToAPI wrote (`aegis guard rules -o yaml`
// formats the rules in force the server answered).
func FromAPI(a adminapi.GuardRule) (guard.Rule, error) {
	r := guard.Rule{Name: a.Name, Disabled: a.Disabled, GroupBy: guard.GroupBy(a.GroupBy), Threshold: a.Threshold,
		Baseline: a.Baseline, GBSeconds: a.Measure == measureGBSeconds}
	for _, name := range a.Signals {
		s, ok := guard.ParseSignal(name)
		if !ok {
			return guard.Rule{}, fmt.Errorf("rule %q: unknown signal %q", a.Name, name)
		}
		r.Signals = append(r.Signals, s)
	}
	var err error
	dur := func(field, s string) time.Duration {
		if s == "" || err != nil {
			return 0
		}
		d, perr := time.ParseDuration(s)
		if perr != nil {
			err = fmt.Errorf("rule %q: %s: %w", a.Name, field, perr)
		}
		return d
	}
	r.Window = dur("window", a.Window)
	r.Learning = dur("learning", a.Learning)
	for i, act := range a.Then {
		r.Then = append(r.Then, guard.Action{Kind: guard.ActionKind(act.Action), Duration: dur(fmt.Sprintf("then[%d].duration", i), act.Duration)})
	}
	return r, err
}

// Changes lists how the rules in force after differ from those before,
// rule by rule, in the order of after (then the rules removed).
func Changes(before, after []guard.Rule) []adminapi.GuardRuleChange {
	out := []adminapi.GuardRuleChange{}
	find := func(rules []guard.Rule, name string) (guard.Rule, bool) {
		i := slices.IndexFunc(rules, func(r guard.Rule) bool { return r.Name == name })
		if i < 0 {
			return guard.Rule{}, false
		}
		return rules[i], true
	}
	for _, r := range after {
		old, ok := find(before, r.Name)
		switch {
		case !ok:
			out = append(out, adminapi.GuardRuleChange{Rule: r.Name, Change: "added"})
		case r.Disabled && !old.Disabled:
			out = append(out, adminapi.GuardRuleChange{Rule: r.Name, Change: "disabled"})
		case !r.Disabled && old.Disabled:
			out = append(out, adminapi.GuardRuleChange{Rule: r.Name, Change: "enabled", Fields: fieldChanges(old, r)})
		default:
			if f := fieldChanges(old, r); len(f) > 0 {
				out = append(out, adminapi.GuardRuleChange{Rule: r.Name, Change: "changed", Fields: f})
			}
		}
	}
	for _, r := range before {
		if _, ok := find(after, r.Name); !ok {
			out = append(out, adminapi.GuardRuleChange{Rule: r.Name, Change: "removed"})
		}
	}
	return out
}

// fieldChanges names each field of a rule file that differs between a
// and b: "when.threshold: 20 → 5".
func fieldChanges(a, b guard.Rule) []string {
	fa, fb := fields(a), fields(b)
	var out []string
	for i := range fa {
		if fa[i][1] != fb[i][1] {
			out = append(out, fa[i][0]+": "+fa[i][1]+" → "+fb[i][1])
		}
	}
	return out
}

// fields is r's fields as a rule file writes them, "-" for one left out.
func fields(r guard.Rule) [][2]string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	durs := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return FormatDuration(d)
	}
	signals := make([]string, len(r.Signals))
	for i, s := range r.Signals {
		signals[i] = s.String()
	}
	then := make([]string, len(r.Then))
	for i, a := range r.Then {
		then[i] = string(a.Kind) + " " + FormatDuration(a.Duration)
	}
	measure := measureCount
	if r.GBSeconds {
		measure = measureGBSeconds
	}
	baseline := "-"
	if r.Baseline != 0 {
		baseline = strconv.FormatFloat(r.Baseline, 'f', -1, 64)
	}
	return [][2]string{
		{"when.signal", dash(strings.Join(signals, ", "))},
		{"when.group_by", dash(string(r.GroupBy))},
		{"when.threshold", strconv.Itoa(r.Threshold)},
		{"when.window", durs(r.Window)},
		{"when.baseline", baseline},
		{"when.measure", measure},
		{"when.learning", durs(r.Learning)},
		{"then", dash(strings.Join(then, ", "))},
	}
}

// FormatAPI is Format of rules as the admin API answered them.
func FormatAPI(rules []adminapi.GuardRule) ([]byte, error) {
	out := make([]guard.Rule, 0, len(rules))
	for _, a := range rules {
		r, err := FromAPI(a)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return Format(out), nil
}
