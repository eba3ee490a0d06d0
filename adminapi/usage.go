package adminapi

import "time"

// UsageRow is what one app, function and caller used over the period asked
// (GET /v1/usage): the caller is the origin charged ("key:NAME",
// "jwt:ISSUER#SUBJECT", "webhook:NAME", "schedule", "admin", "public").
// Aggregated ?by=function, Caller is ""; ?by=caller, Function is "".
type UsageRow struct {
	App         string  `json:"app"`
	Function    string  `json:"function"`
	Caller      string  `json:"caller"`
	Invocations int64   `json:"invocations"`
	GBSeconds   float64 `json:"gb_seconds"`
	EgressBytes int64   `json:"egress_bytes"`
	Rejected    int64   `json:"rejected"`
}

// The values of GET /v1/usage?by=.
const (
	UsageByFunction = "function"
	UsageByCaller   = "caller"
)

// BudgetState is a budget in its current window (GET /v1/usage/budgets):
// what it allows (a zero limit does not cap), what is used, and when the
// window ends. Scope is "app", "function" or "key".
type BudgetState struct {
	Scope    string    `json:"scope"`
	App      string    `json:"app,omitempty"`
	Function string    `json:"function,omitempty"`
	Key      string    `json:"key,omitempty"`
	Per      string    `json:"per"`
	Mode     string    `json:"mode"`
	ResetsAt time.Time `json:"resets_at"`

	Invocations      int64   `json:"invocations"`
	InvocationsLimit int64   `json:"invocations_limit,omitempty"`
	GBSeconds        float64 `json:"gb_seconds"`
	GBSecondsLimit   float64 `json:"gb_seconds_limit,omitempty"`
	EgressBytes      int64   `json:"egress_bytes"`
	EgressLimit      int64   `json:"egress_limit,omitempty"`
	// Exhausted: a hard budget refuses new invocations until ResetsAt or
	// a deploy that raises it.
	Exhausted bool `json:"exhausted"`
}
