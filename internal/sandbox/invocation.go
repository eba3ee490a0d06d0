package sandbox

// Request is what one invocation hands to a guest. Over the ABI the body
// travels raw and everything else as the JSON "request meta" document
// (docs/abi.md), so large bodies are never re-encoded.
//
// Hop counts the events in the chain that led to an event or object
// delivery: 1 for an event published by an HTTP or scheduled invocation,
// h+1 for one published while handling an event of hop h. The bus stops
// events beyond its hop limit, which ends recursive loops.
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
	Identity  *Identity           `json:"identity,omitempty"`  // http: the verified caller
	Hop       int                 `json:"hop,omitempty"`       // event, object: events in the chain so far
	Body      []byte              `json:"-"`
}

// Identity is the verified caller of an HTTP invocation: only what the
// platform checked, never the credential itself.
type Identity struct {
	Scheme  string `json:"scheme"`            // "api-key", "jwt" or "hmac"
	Subject string `json:"subject,omitempty"` // key name, token "sub", or webhook secret name
	Issuer  string `json:"issuer,omitempty"`  // jwt: the token's "iss"
	// Claims are every claim of a verified JWT; nil for other schemes.
	Claims map[string]any `json:"claims,omitempty"`
	// Scopes are an API key's scopes, for the gateway's authorization
	// (empty: all). Not passed to the guest.
	Scopes []string `json:"-"`
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
