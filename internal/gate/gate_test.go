package gate

import (
	"os"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/internal/scan/rules"
)

// Every rule any check reports is documented in docs/scan.md, with its id
// in backquotes, and has a title, a severity and a fix.
func TestEveryRuleDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scan.md")
	if err != nil {
		t.Fatal(err)
	}
	all := Rules()
	if len(all) < 8 {
		t.Fatalf("%d rules: the checks report fewer than the issue names", len(all))
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.ID] {
			t.Errorf("rule %s declared twice", r.ID)
		}
		seen[r.ID] = true
		if !strings.Contains(string(doc), "`"+r.ID+"`") {
			t.Errorf("rule %s is not in docs/scan.md", r.ID)
		}
		if r.Title == "" || r.Fix == "" || r.Severity == scan.SeverityNone {
			t.Errorf("rule %s: title %q, fix %q, severity %v", r.ID, r.Title, r.Fix, r.Severity)
		}
	}
}

// A manifest rule is never critical: the server refuses deploys at
// critical by default, and a setting is a risk to weigh, not a leak.
func TestManifestRulesAreNotCritical(t *testing.T) {
	for _, r := range rules.Rules() {
		if r.Severity >= scan.Critical {
			t.Errorf("manifest rule %s is %v", r.ID, r.Severity)
		}
	}
}
