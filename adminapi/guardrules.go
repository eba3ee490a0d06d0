package adminapi

import "time"

// GuardRules is the guard's rule file and the rules in force (GET
// /v1/guard/rules, docs/guard.md): File is the YAML text last applied
// with `aegis guard apply` ("" when none was), AppliedBy the admin token
// that applied it and AppliedAt when. Rules are the defaults merged with
// the file, in force on every server within a second of the apply.
type GuardRules struct {
	File      string      `json:"file,omitempty"`
	AppliedBy string      `json:"applied_by,omitempty"`
	AppliedAt *time.Time  `json:"applied_at,omitempty"`
	Rules     []GuardRule `json:"rules"`
}

// GuardRule is one rule as a rule file spells it. Window, Learning and
// an action's Duration are Go durations ("1m0s"); Measure is "count" or
// "gb_seconds"; Source says where the rule comes from: "default" (a
// built-in rule, as built), "file" (the applied rule file added or
// replaced it) or "configuration" (the server's own configuration).
type GuardRule struct {
	Name      string        `json:"name"`
	Disabled  bool          `json:"disabled,omitempty"`
	Signals   []string      `json:"signals,omitempty"`
	GroupBy   string        `json:"group_by,omitempty"`
	Threshold int           `json:"threshold"`
	Window    string        `json:"window,omitempty"`
	Baseline  float64       `json:"baseline,omitempty"`
	Measure   string        `json:"measure,omitempty"`
	Learning  string        `json:"learning,omitempty"`
	Then      []GuardAction `json:"then,omitempty"`
	Source    string        `json:"source,omitempty"`
}

// GuardAction is what a rule does when it fires, for Duration.
type GuardAction struct {
	Action   string `json:"action"`
	Duration string `json:"duration"`
}

// GuardRulesApplied answers PUT /v1/guard/rules: what the file changes
// on the rules in force (one line per changed field, by rule), how it
// weakens the defaults (each needed the step-up code), and the rules in
// force after it. With DryRun nothing was stored.
type GuardRulesApplied struct {
	DryRun     bool              `json:"dry_run,omitempty"`
	Changes    []GuardRuleChange `json:"changes"`
	Weakenings []string          `json:"weakenings"`
	Rules      []GuardRule       `json:"rules"`
	AppliedBy  string            `json:"applied_by,omitempty"`
	AppliedAt  *time.Time        `json:"applied_at,omitempty"`
}

// GuardRuleChange is one rule the file changes: Change is "added",
// "removed" (a rule of the file applied before, no longer named),
// "changed" (Fields says how: "when.threshold: 20 → 5"), "disabled" or
// "enabled".
type GuardRuleChange struct {
	Rule   string   `json:"rule"`
	Change string   `json:"change"`
	Fields []string `json:"fields,omitempty"`
}
