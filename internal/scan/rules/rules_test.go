package rules

import (
	"path/filepath"
	"testing"

	"github.com/aegis-platform/aegis/internal/scan"
)

func load(t *testing.T, path string) *scan.App {
	t.Helper()
	app, err := scan.LoadApp(path)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// Each rule fires on the crafted manifest exactly where the risk is
// written, and only there.
func TestEachRuleFires(t *testing.T) {
	got := map[string]scan.Finding{}
	for _, f := range Check(load(t, "testdata/risky.yaml")) {
		if _, dup := got[f.ID]; dup {
			t.Errorf("finding %s twice", f.ID)
		}
		got[f.ID] = f
	}
	want := []struct {
		id, rule, fn string
		line         int
	}{
		{"public-route-no-rate:open:0", PublicNoRate, "open", 6},
		{"public-route-no-schema:open:0", PublicNoSchema, "open", 6},
		{"jwt-route-without-rule:tokens:0", JWTWithoutRule, "tokens", 11},
		{"event-without-schema:greedy:0", EventNoSchema, "greedy", 16},
		{"wildcard-grant:greedy:grants.kv.write", WildcardGrant, "greedy", 18},
		{"wildcard-egress:greedy:egress:*.example.com", WildcardEgress, "greedy", 19},
		{"long-timeout-high-concurrency:greedy:limits", LongTimeoutConcurrent, "greedy", 20},
		{"function-without-limits:bare:limits", NoLimits, "bare", 21},
	}
	for _, w := range want {
		f, ok := got[w.id]
		if !ok {
			t.Errorf("no finding %s in %v", w.id, got)
			continue
		}
		if f.Rule != w.rule || f.Function != w.fn || f.Line != w.line || f.File != "risky.yaml" || f.Severity != rule(w.rule).Severity || f.Fix == "" {
			t.Errorf("%s: %+v, want rule %s function %s line %d", w.id, f, w.rule, w.fn, w.line)
		}
		delete(got, w.id)
	}
	for id := range got {
		t.Errorf("unexpected finding %s", id)
	}
	fired := map[string]bool{}
	for _, w := range want {
		fired[w.rule] = true
	}
	for _, r := range Rules() {
		if !fired[r.ID] {
			t.Errorf("rule %s has no case", r.ID)
		}
	}
}

// The examples hold none of the risks.
func TestExamplesAreQuiet(t *testing.T) {
	for _, p := range []string{"../../../examples/travel-diary/aegis.yaml", "../../../examples/echo/aegis.yaml"} {
		if fs := Check(load(t, filepath.FromSlash(p))); len(fs) != 0 {
			t.Errorf("%s: %+v", p, fs)
		}
	}
}
