package adminapi

import "time"

// Graph is an app's call graph (GET /v1/apps/{app}/graph): the edges its
// active manifest declares beside those observed at run time
// (docs/callgraph.md).
type Graph struct {
	App   string      `json:"app"`
	Edges []GraphEdge `json:"edges"`
	// Dropped counts the uses of edges the server did not keep because
	// the app already had as many distinct edges as it may.
	Dropped int64 `json:"dropped,omitempty"`
}

// GraphEdge is one edge. Kind is "http" (route → function), "event"
// (topic → function), "object" (object prefix → function), "schedule"
// (cron → function), "publish" (function → topic), "invoke" (function →
// function), "fetch" (function → host), "kv" (function → table),
// "objects" (function → object pattern) or "secret" (function → secret
// name); FromType and ToType name what the ends are ("route",
// "function", "topic", "prefix", "schedule", "host", "table", "objects",
// "secret").
//
// Declared: the manifest has it (a trigger or a grant). Observed: it was
// seen at run time, used or refused. Count: the invocations its trigger
// started, or the host calls a grant allowed. RefusedCount: the host calls
// refused on it.
type GraphEdge struct {
	From         string     `json:"from"`
	To           string     `json:"to"`
	Kind         string     `json:"kind"`
	FromType     string     `json:"from_type"`
	ToType       string     `json:"to_type"`
	Declared     bool       `json:"declared"`
	Observed     bool       `json:"observed"`
	Count        int64      `json:"count"`
	LastSeen     *time.Time `json:"last_seen,omitempty"`
	Refused      bool       `json:"refused"`
	RefusedCount int64      `json:"refused_count,omitempty"`
	LastRefused  *time.Time `json:"last_refused,omitempty"`
	Flags        []string   `json:"flags,omitempty"`
}

// The flags of a GraphEdge.
const (
	// FlagNarrow: a grant never used; the function could do without it.
	FlagNarrow = "grant to narrow"
	// FlagNeverTriggered: a declared trigger that never started the
	// function.
	FlagNeverTriggered = "never triggered"
	// FlagOutside: the function tried a call its grants refused.
	FlagOutside = "attempt outside the grants"
)
