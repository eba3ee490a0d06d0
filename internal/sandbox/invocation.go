package sandbox

// Request is what one invocation hands to a guest. Over the ABI the body
// travels raw and everything else as the JSON "request meta" document
// (docs/abi.md), so large bodies are never re-encoded.
type Request struct {
	Kind      string              `json:"kind"` // "http", "event", "object", "schedule"
	RequestID string              `json:"request_id"`
	Method    string              `json:"method,omitempty"`
	Path      string              `json:"path,omitempty"`
	Params    map[string]string   `json:"params,omitempty"`
	Query     map[string][]string `json:"query,omitempty"`
	Headers   map[string][]string `json:"headers,omitempty"`
	Topic     string              `json:"topic,omitempty"`     // event: the topic
	Key       string              `json:"key,omitempty"`       // object: the object key
	Operation string              `json:"operation,omitempty"` // object: "put" or "delete"
	Attempt   int                 `json:"attempt,omitempty"`   // event: 1 for the first delivery
	Body      []byte              `json:"-"`
}

// Response is what a guest answers. Status 0 means 200.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"-"`
}

// Request kinds.
const (
	KindHTTP     = "http"
	KindEvent    = "event"
	KindObject   = "object"
	KindSchedule = "schedule"
)
