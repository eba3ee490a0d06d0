package adminapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestGuardRulesWire pins the bodies of /v1/guard/rules as TestWire pins
// the others (docs/admin-api.md).
func TestGuardRulesWire(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	bf := GuardRule{Name: "brute_force", Signals: []string{"auth_failure"}, GroupBy: "address", Threshold: 5, Window: "1m0s",
		Measure: "count", Then: []GuardAction{{Action: "block_address", Duration: "15m0s"}}, Source: "file"}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"GuardRule", &bf,
			`{"name":"brute_force","signals":["auth_failure"],"group_by":"address","threshold":5,"window":"1m0s",` +
				`"measure":"count","then":[{"action":"block_address","duration":"15m0s"}],"source":"file"}`},
		{"GuardRule with a baseline and learning", &GuardRule{Name: "x", Signals: []string{"invocation"}, GroupBy: "function",
			Threshold: 600, Window: "1m0s", Baseline: 2.5, Measure: "gb_seconds", Learning: "10m0s",
			Then: []GuardAction{{Action: "alert", Duration: "15m0s"}}, Source: "default"},
			`{"name":"x","signals":["invocation"],"group_by":"function","threshold":600,"window":"1m0s","baseline":2.5,` +
				`"measure":"gb_seconds","learning":"10m0s","then":[{"action":"alert","duration":"15m0s"}],"source":"default"}`},
		{"GuardRule disabled", &GuardRule{Name: "shadow_api", Disabled: true, Source: "file"},
			`{"name":"shadow_api","disabled":true,"threshold":0,"source":"file"}`},
		{"GuardRules", &GuardRules{File: "rules: []\n", AppliedBy: "root", AppliedAt: &t0, Rules: []GuardRule{bf}},
			`{"file":"rules: []\n","applied_by":"root","applied_at":"2025-01-02T03:04:05Z","rules":[` +
				`{"name":"brute_force","signals":["auth_failure"],"group_by":"address","threshold":5,"window":"1m0s",` +
				`"measure":"count","then":[{"action":"block_address","duration":"15m0s"}],"source":"file"}]}`},
		{"GuardRules, none applied", &GuardRules{Rules: []GuardRule{}}, `{"rules":[]}`},
		{"GuardRulesApplied", &GuardRulesApplied{Changes: []GuardRuleChange{{Rule: "brute_force", Change: "changed",
			Fields: []string{"when.threshold: 20 → 5"}}, {Rule: "x", Change: "added"}},
			Weakenings: []string{"shadow_api: disabled"}, Rules: []GuardRule{}, AppliedBy: "root", AppliedAt: &t0},
			`{"changes":[{"rule":"brute_force","change":"changed","fields":["when.threshold: 20 → 5"]},{"rule":"x","change":"added"}],` +
				`"weakenings":["shadow_api: disabled"],"rules":[],"applied_by":"root","applied_at":"2025-01-02T03:04:05Z"}`},
		{"GuardRulesApplied, dry run", &GuardRulesApplied{DryRun: true, Changes: []GuardRuleChange{}, Weakenings: []string{}, Rules: []GuardRule{}},
			`{"dry_run":true,"changes":[],"weakenings":[],"rules":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("encoded\n got %s\nwant %s", got, tt.want)
			}
			back := reflect.New(reflect.TypeOf(tt.v).Elem())
			if err := json.Unmarshal(got, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Interface(), tt.v) {
				t.Fatalf("decoded %+v, want %+v", back.Elem(), reflect.ValueOf(tt.v).Elem())
			}
		})
	}
}
