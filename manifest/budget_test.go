package manifest

import (
	"math"
	"strings"
	"testing"
)

// Every wrong budget is named by its field path, on the app and on a
// function alike.
func TestValidateBudget(t *testing.T) {
	for _, tt := range []struct {
		b    Budget
		want string
	}{
		{Budget{Invocations: 10}, "budget.per: per is required (hour, day or month)"},
		{Budget{Per: "week", Invocations: 10}, `budget.per: invalid window "week" (use hour, day or month)`},
		{Budget{Per: WindowDay}, "budget: a budget needs at least one amount (invocations, gb_seconds or egress)"},
		{Budget{Per: WindowDay, Invocations: -1}, "budget.invocations: invocations must not be negative"},
		{Budget{Per: WindowDay, Invocations: 5, GBSeconds: -1}, "budget.gb_seconds: gb_seconds must be a finite number, not negative"},
		{Budget{Per: WindowDay, Invocations: 5, GBSeconds: math.NaN()}, "budget.gb_seconds: gb_seconds must be a finite number, not negative"},
		{Budget{Per: WindowDay, Egress: -5, Invocations: 1}, "budget.egress: egress must not be negative"},
		{Budget{Per: WindowDay, Invocations: 5, Mode: "soft"}, `budget.mode: unsupported budget mode "soft" (use hard or alert)`},
	} {
		b := tt.b
		m := &Manifest{App: "demo", Budget: &b, Functions: map[string]*Function{"f": {Source: "f.wasm", Budget: &b}}}
		err := m.Validate()
		if err == nil {
			t.Errorf("%+v: no error", tt.b)
			continue
		}
		if !strings.Contains(err.Error(), "functions.f."+tt.want) || !strings.Contains(err.Error(), "\n"+tt.want) && !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: got\n%v\nwant %q on the app and the function", tt.b, err, tt.want)
		}
	}
	for _, b := range []Budget{
		{Per: WindowHour, Invocations: 1},
		{Per: WindowMonth, GBSeconds: 0.5, Mode: BudgetAlert},
		{Per: WindowDay, Egress: GB, Mode: BudgetHard},
	} {
		m := &Manifest{App: "demo", Budget: &b, Functions: map[string]*Function{"f": {Source: "f.wasm"}}}
		if err := m.Validate(); err != nil {
			t.Errorf("%+v: %v", b, err)
		}
	}
}

// A budget is read from YAML with its byte size, and defaults to hard.
func TestParseBudget(t *testing.T) {
	src := "app: demo\nbudget: { per: day, invocations: 1000, egress: 1GiB }\nfunctions:\n  f:\n    source: ./f\n    budget:\n      per: hour\n      gb_seconds: 3.5\n      mode: alert\n"
	m, err := Parse("aegis.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, *m.Budget, Budget{Per: WindowDay, Invocations: 1000, Egress: GiB})
	equal(t, *m.Functions["f"].Budget, Budget{Per: WindowHour, GBSeconds: 3.5, Mode: BudgetAlert})
	d := m.WithDefaults()
	equal(t, d.Budget.Mode, BudgetHard)
	equal(t, m.Budget.Mode, "") // the original is untouched
	equal(t, d.Functions["f"].Budget.Mode, BudgetAlert)
	if _, err := Parse("aegis.yaml", []byte(strings.Replace(src, "per: hour", "per: week", 1))); err == nil ||
		!strings.Contains(err.Error(), "functions.f.budget.per") {
		t.Fatalf("got %v", err)
	}
}
