package guard

import "time"

// Alert is one incident: a rule that fired on a target, what it counted
// and what it did. A rule firing again on the same target while the
// incident is open (until Until) raises no new alert, on any server.
type Alert struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Rule    string    `json:"rule"`
	Signals []string  `json:"signals"`
	GroupBy string    `json:"group_by"`
	Target  string    `json:"target"`
	// Count is what the window held when the rule fired: signals, or
	// GB-seconds for a rule measuring them.
	Count  float64 `json:"count"`
	Window string  `json:"window"`
	// Baseline is the average per window the count was compared with,
	// for a rule with a baseline.
	Baseline float64 `json:"baseline,omitempty"`
	// Actions are what the rule did ("block_address 15m0s"), Blocks the
	// ids of the blocks it placed (aegis guard lift ID).
	Actions []string `json:"actions"`
	Blocks  []string `json:"blocks,omitempty"`
	// Message says it in one sentence, for a log line or a chat message.
	Message string    `json:"message"`
	Until   time.Time `json:"until"`
}
