package sandbox

import (
	"strings"

	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/manifest"
)

// Request is what one invocation hands to a guest. Over the ABI the body
// travels raw and everything else as the JSON "request meta" document
// (docs/abi.md), so large bodies are never re-encoded.
//
// Hop counts the events and function-to-function calls (invoke) in the
// chain that led to an invocation: 0 for a request from outside, 1 for an
// event published or a function invoked by such a request, h+1 for one
// published or invoked while handling hop h. The bus and the invoke
// capability stop chains beyond the hop limit, which ends recursive loops.
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
	Hop       int                 `json:"hop,omitempty"`       // events and invoke calls in the chain so far
	Body      []byte              `json:"-"`
	// Trigger names the manifest's trigger that started this invocation,
	// as the manifest declares it, for the call graph: the route "METHOD
	// /path/{param}" (http), the topic (event), the object prefix
	// (object), the cron expression (schedule). Empty for invoke calls and
	// the admin API's invoke.
	Trigger string `json:"-"`
	// Origin is who started the chain this invocation belongs to, the
	// principal its usage is charged to (Origin* helpers): "key:NAME",
	// "jwt:ISSUER#SUBJECT", "webhook:NAME", "schedule", "admin" or
	// "public". Events and invoke calls carry it on; the guest never sees it.
	Origin string `json:"-"`
	// Chain names the functions of the app that led to this invocation
	// through events and invoke calls, oldest first (at most MaxChain of
	// the latest); empty for a request from outside. A chain stopped at
	// the hop limit is reported by it ("a → b → a → …").
	Chain []string `json:"-"`
	// Meter, when set, counts what the invocation moves through its
	// capabilities; the host adds to it and enforces the function's caps.
	Meter *Meter `json:"-"`
	// Trace is this invocation's span: the trace it belongs to, its own
	// span id (dispatch gives one when it is empty) and the span that
	// caused it (the gateway's request, the publishing or calling
	// function's invocation). Caller.Trace carries it, so what the
	// function publishes or invokes becomes its child.
	Trace telemetry.Span `json:"-"`
}

// Meter is what one invocation has used of the capabilities with a
// per-invocation cap (manifest.Limits: max_fetches, max_egress,
// max_publishes). One invocation's host calls run one at a time, so it
// needs no lock.
type Meter struct {
	Fetches     int
	Publishes   int
	EgressBytes int64
}

// MaxChain bounds Request.Chain: a chain is stopped at the hop limit (16
// by default) long before, and the bound keeps a configured higher limit
// from growing the envelope without end.
const MaxChain = 32

// Extend returns chain with fn appended, keeping at most MaxChain names
// (the latest). It never writes to chain's backing array, which another
// invocation may share.
func Extend(chain []string, fn string) []string {
	if len(chain) >= MaxChain {
		chain = chain[len(chain)-MaxChain+1:]
	}
	out := make([]string, len(chain), len(chain)+1)
	copy(out, chain)
	return append(out, fn)
}

// Origins: the principal an invocation is charged to.
const (
	OriginSchedule = "schedule"
	OriginAdmin    = "admin"
	OriginPublic   = "public"
)

// OriginOf names the principal behind a verified identity: "key:NAME",
// "jwt:ISSUER#SUBJECT", "webhook:NAME"; OriginPublic for none.
func OriginOf(id *Identity) string {
	if id == nil {
		return OriginPublic
	}
	switch id.Scheme {
	case manifest.AuthAPIKey:
		return "key:" + id.Subject
	case manifest.AuthJWT:
		return "jwt:" + id.Issuer + "#" + id.Subject
	case manifest.AuthHMAC:
		return "webhook:" + id.Subject
	}
	return id.Scheme + ":" + id.Subject
}

// Identity is the verified caller of an HTTP invocation: only what the
// platform checked, never the credential itself.
type Identity struct {
	Scheme  string `json:"scheme"`            // "api-key", "jwt", "hmac" or "function" (SchemeFunction)
	Subject string `json:"subject,omitempty"` // key name, token "sub", webhook secret name, or "app/function"
	Issuer  string `json:"issuer,omitempty"`  // jwt: the token's "iss"
	// Claims are every claim of a verified JWT; nil for other schemes.
	Claims map[string]any `json:"claims,omitempty"`
	// Scopes are an API key's scopes, for the gateway's authorization
	// (empty: all). Not passed to the guest.
	Scopes []string `json:"-"`
	// Rate and Burst are an API key's rate limit and Budget its
	// invocation budget (zero: none), for the gateway's admission. Not
	// passed to the guest.
	Rate   manifest.Rate  `json:"-"`
	Burst  int            `json:"-"`
	Budget manifest.Quota `json:"-"`
	// KeyID is an API key's non-secret id, what the guard counts and
	// suspends a key by. Not passed to the guest.
	KeyID string `json:"-"`
}

// SchemeFunction is the Identity scheme of a call made by another function
// of the same app through invoke; Subject is then "app/function". It can
// never come from outside: the gateway only sets the schemes it verifies.
const SchemeFunction = "function"

// Response is what a guest answers. Status 0 means 200.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"-"`
}

// FieldLines returns the field lines of a response header's value. A
// function sends one header several times (two Set-Cookie lines) as one
// value with the lines separated by LF, which no field value may contain;
// decodeResponseMeta has checked each line.
func FieldLines(value string) []string {
	if !strings.Contains(value, "\n") {
		return []string{value}
	}
	return strings.Split(value, "\n")
}

// Request kinds.
const (
	KindHTTP     = "http"
	KindEvent    = "event"
	KindObject   = "object"
	KindSchedule = "schedule"
)
