package adminapi

import "github.com/aegis-platform/aegis/manifest"

// Advice is least-privilege advice for an app's active version (GET
// /v1/apps/{app}/advice, `aegis advise`, docs/advise.md): for each
// function, its grants, a narrower set to paste into aegis.yaml, and why
// each grant changed.
type Advice struct {
	App     string `json:"app"`
	Version int    `json:"version"`
	// Observed reports whether the call graph holds any observation of
	// the app's functions at all; when it does not, Note says so and every
	// function's advice rests on its module's imports.
	Observed  bool             `json:"observed"`
	Note      string           `json:"note,omitempty"`
	Functions []FunctionAdvice `json:"functions"`
}

// The evidence a FunctionAdvice rests on, best first.
const (
	// EvidenceObserved: the call graph saw the function run; its host
	// calls under each grant are what the advice keeps.
	EvidenceObserved = "observed"
	// EvidenceImports: the function was never seen running; the advice
	// drops the grant kinds whose host functions its module does not
	// import, and keeps the others as they are.
	EvidenceImports = "imports"
	// EvidenceNone: neither; the grants are kept as they are.
	EvidenceNone = "none"
)

// FunctionAdvice is one function's advice. Invocations counts the runs
// its triggers started (and calls from other functions) as the call
// graph saw them; Imports lists the "aegis" host functions its module
// imports.
type FunctionAdvice struct {
	Function    string          `json:"function"`
	Evidence    string          `json:"evidence"`
	Invocations int64           `json:"invocations"`
	Imports     []string        `json:"imports,omitempty"`
	Current     manifest.Grants `json:"current"`
	Advised     manifest.Grants `json:"advised"`
	Changes     []GrantChange   `json:"changes,omitempty"`
	// Notes are what a reader should know about grants left as they are
	// (a wildcard the evidence cannot narrow, a call refused outside the
	// grants).
	Notes []string `json:"notes,omitempty"`
}

// GrantChange is one grant the advice changes. Field is where the grant is
// in the function's grants ("kv.write", "objects.read", "events.publish",
// "egress.hosts", "invoke", "secrets"), Grant the entry as the manifest
// writes it. Action is "drop" (removed), "narrow" (replaced by To, the
// names the function used under it) or "read-only" (a write grant only
// ever read through: moved to the read list, To).
type GrantChange struct {
	Field  string   `json:"field"`
	Grant  string   `json:"grant"`
	Action string   `json:"action"`
	To     []string `json:"to,omitempty"`
	Reason string   `json:"reason"`
}

// The actions of a GrantChange.
const (
	ActionDrop     = "drop"
	ActionNarrow   = "narrow"
	ActionReadOnly = "read-only"
)
