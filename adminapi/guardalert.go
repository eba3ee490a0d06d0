package adminapi

import "time"

// GuardAlert is one incident the guard raised an alert for (GET
// /v1/guard/alerts, docs/guard.md "Alerts"): Rule fired on Target (an
// address, a key, a function, as GroupBy says) having counted Count of
// Signals within Window (a Go duration, "1m0s"), against Baseline for a
// rule with one; it did Actions ("block_address 15m0s"), placing Blocks
// (ids for aegis guard lift). The incident stays open, and raises no
// other alert, until Until. It is also the body POSTed to an alert
// webhook.
type GuardAlert struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Rule     string    `json:"rule"`
	Signals  []string  `json:"signals"`
	GroupBy  string    `json:"group_by"`
	Target   string    `json:"target"`
	Count    float64   `json:"count"`
	Window   string    `json:"window"`
	Baseline float64   `json:"baseline,omitempty"`
	Actions  []string  `json:"actions"`
	Blocks   []string  `json:"blocks,omitempty"`
	Message  string    `json:"message"`
	Until    time.Time `json:"until"`
}
