// Package manifest defines aegis.yaml: the types users write, strict parsing
// with errors that name file, line and field, and validation of everything a
// deploy depends on. It never touches the network or the file system beyond
// reading the manifest it is given.
package manifest

import "time"

// Manifest is one app: its functions, their triggers, grants and limits.
type Manifest struct {
	App       string               `yaml:"app" json:"app"`
	Functions map[string]*Function `yaml:"functions" json:"functions"`
	// Budget caps what the whole app may spend per window.
	Budget *Budget `yaml:"budget,omitempty" json:"budget,omitempty"`
}

// Function is one deployable unit. Name is filled from the map key.
type Function struct {
	Name      string    `yaml:"-" json:"name"`
	Source    string    `yaml:"source" json:"source"`
	Triggers  []Trigger `yaml:"triggers" json:"triggers,omitempty"`
	Grants    Grants    `yaml:"grants" json:"grants"`
	Limits    Limits    `yaml:"limits" json:"limits"`
	Isolation Isolation `yaml:"isolation" json:"isolation,omitempty"`
	// Budget caps what this function may spend per window, on top of the
	// app's budget.
	Budget *Budget `yaml:"budget,omitempty" json:"budget,omitempty"`
}

// Isolation says whether warm instances may be reused across invocations.
type Isolation string

const (
	IsolationReuse      Isolation = "reuse"       // default: warm instance, one request at a time
	IsolationPerRequest Isolation = "per-request" // a fresh instance for every invocation
)

// Trigger has exactly one of its fields set.
type Trigger struct {
	HTTP     *HTTPTrigger     `yaml:"http,omitempty" json:"http,omitempty"`
	Event    *EventTrigger    `yaml:"event,omitempty" json:"event,omitempty"`
	Object   *ObjectTrigger   `yaml:"object,omitempty" json:"object,omitempty"`
	Schedule *ScheduleTrigger `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// HTTPTrigger routes METHOD PATH to the function. Path segments may be
// "{param}". Auth lists accepted schemes ("api-key", the default, "jwt" and
// "hmac"); a request that satisfies any one of them is let in. JWT and HMAC
// configure the schemes of the same name and are required when Auth lists
// them. Public opts out of authentication entirely. Rule, when set, is a CEL
// expression over request and identity that must be true for an
// authenticated request to reach the function (docs/identity.md).
//
// Private keeps the route off the gateway altogether: it answers 404 from
// outside and is reachable only by functions of the same app that hold an
// invoke grant naming this function.
//
// Schema names JSON Schema files validating the body, query and path
// parameters ("schema: FILE" is short for "schema: {body: FILE}");
// ContentTypes lists the media types a request body may have (default
// application/json when Schema.Body is set).
type HTTPTrigger struct {
	Method       string      `yaml:"method" json:"method"`
	Path         string      `yaml:"path" json:"path"`
	Auth         []string    `yaml:"auth,omitempty" json:"auth,omitempty"`
	Public       bool        `yaml:"public,omitempty" json:"public,omitempty"`
	Private      bool        `yaml:"private,omitempty" json:"private,omitempty"`
	JWT          *JWTAuth    `yaml:"jwt,omitempty" json:"jwt,omitempty"`
	HMAC         *HMACAuth   `yaml:"hmac,omitempty" json:"hmac,omitempty"`
	Rule         string      `yaml:"rule,omitempty" json:"rule,omitempty"`
	Schema       *HTTPSchema `yaml:"schema,omitempty" json:"schema,omitempty"`
	ContentTypes []string    `yaml:"content_types,omitempty" json:"content_types,omitempty"`
	// Rate limits the requests the route admits (token buckets).
	Rate *RouteRate `yaml:"rate,omitempty" json:"rate,omitempty"`
}

// RouteRate limits a route's requests: in total, per caller (the API key,
// the JWT's issuer and subject, or the webhook secret) and per client
// address. An unset rate does not limit. Burst defaults to each rate's
// count.
type RouteRate struct {
	Total      Rate `yaml:"total,omitempty" json:"total,omitempty"`
	PerCaller  Rate `yaml:"per_caller,omitempty" json:"per_caller,omitempty"`
	PerAddress Rate `yaml:"per_address,omitempty" json:"per_address,omitempty"`
}

// Budget is what an app or a function may spend per window, priced by the
// cost model of docs/budgets.md: invocations, GB-seconds (memory limit ×
// wall time) and egress bytes. A zero amount does not cap. Mode "hard"
// (the default) refuses work once an amount is spent; "alert" only
// raises alerts at 80 % and 100 %.
type Budget struct {
	Per         Window   `yaml:"per" json:"per"`
	Invocations int64    `yaml:"invocations,omitempty" json:"invocations,omitempty"`
	GBSeconds   float64  `yaml:"gb_seconds,omitempty" json:"gb_seconds,omitempty"`
	Egress      ByteSize `yaml:"egress,omitempty" json:"egress,omitempty"`
	Mode        string   `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// Budget modes.
const (
	BudgetHard  = "hard"
	BudgetAlert = "alert"
)

// HTTPSchema names the JSON Schema (draft 2020-12) files a request must
// satisfy. Each is a path relative to the manifest; the CLI sends the
// files' contents with the deploy, so the server never reads the caller's
// file system. Query and Params validate an object whose properties are the
// query parameters and the path parameters, every value a string (a query
// parameter given more than once is an array of strings).
type HTTPSchema struct {
	Body   string `yaml:"body,omitempty" json:"body,omitempty"`
	Query  string `yaml:"query,omitempty" json:"query,omitempty"`
	Params string `yaml:"params,omitempty" json:"params,omitempty"`
}

// fromScalar reads the shorthand "schema: FILE", a body schema alone.
func (s *HTTPSchema) fromScalar(file string) { s.Body = file }

// Files lists the schema files the trigger names, in a fixed order.
func (s *HTTPSchema) Files() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, f := range []string{s.Body, s.Query, s.Params} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// MaxRuleLen caps an HTTP trigger's rule.
const MaxRuleLen = 4 << 10

// Authentication schemes an HTTP trigger may list in Auth.
const (
	AuthAPIKey = "api-key" // Authorization: Bearer aegis_… (an API key)
	AuthJWT    = "jwt"     // Authorization: Bearer <JWT> from an OpenID Connect issuer
	AuthHMAC   = "hmac"    // a signed webhook: HMAC-SHA256 of timestamp and body
)

// JWTAuth accepts bearer JWTs signed by an OpenID Connect issuer. Keys come
// from the issuer's JWKS, found by discovery; only asymmetric algorithms
// are accepted, so a token can never be checked with a public key used as
// an HMAC secret.
type JWTAuth struct {
	// Issuer is the exact "iss" of accepted tokens and the base of
	// {issuer}/.well-known/openid-configuration. https, or http on a
	// loopback address (127.0.0.1, [::1]) for local testing.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Audience must be one of the token's "aud" values.
	Audience string `yaml:"audience" json:"audience"`
	// Algorithms accepted in the token header; default [RS256].
	Algorithms []string `yaml:"algorithms,omitempty" json:"algorithms,omitempty"`
	// Skew is the clock difference tolerated on exp, nbf and iat; default 60s.
	Skew Duration `yaml:"skew,omitempty" json:"skew,omitempty"`
}

// HMACAuth accepts webhooks signed with a secret of the app, created with
// `aegis webhook-secrets create APP NAME` (the secret itself never appears
// in a manifest).
type HMACAuth struct {
	// Secret names the app's webhook secret.
	Secret string `yaml:"secret" json:"secret"`
	// Header carries "t=<unix seconds>,v1=<hex HMAC-SHA256>"; default
	// Aegis-Signature.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
}

// EventTrigger consumes a topic with a durable consumer.
// Schema, when set, names a JSON Schema file every event's payload must
// satisfy; an event that does not is dead-lettered with the reason.
type EventTrigger struct {
	Topic       string `yaml:"topic" json:"topic"`
	MaxAttempts int    `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"` // 0 = default (3)
	Schema      string `yaml:"schema,omitempty" json:"schema,omitempty"`
}

// ObjectTrigger fires on put and/or delete of objects under Prefix.
// Schema, when set, names a JSON Schema file the object event (its
// metadata document, docs/events.md) must satisfy.
type ObjectTrigger struct {
	Prefix     string   `yaml:"prefix" json:"prefix"`
	Operations []string `yaml:"operations,omitempty" json:"operations,omitempty"` // "put", "delete"; empty = both
	Schema     string   `yaml:"schema,omitempty" json:"schema,omitempty"`
}

// ScheduleTrigger fires on a standard 5-field cron expression (or @every 1m).
type ScheduleTrigger struct {
	Cron string `yaml:"cron" json:"cron"`
}

// Grants name everything a function may touch. The zero value grants nothing.
type Grants struct {
	KV      ReadWrite    `yaml:"kv" json:"kv"`           // table names
	Objects ReadWrite    `yaml:"objects" json:"objects"` // key patterns: "images/*" or an exact key
	Events  EventGrants  `yaml:"events" json:"events"`
	Egress  EgressGrants `yaml:"egress" json:"egress"`
	// Invoke names functions of the same app whose HTTP routes (private
	// ones included) this function may call directly.
	Invoke []string `yaml:"invoke,omitempty" json:"invoke,omitempty"`
	// Secrets names the app's secrets (the vault's, by exact name: no
	// patterns) this function may read with the secret host call. A
	// manifest carries names only, never a value.
	Secrets []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
}

// ReadWrite lists names or patterns granted for reading and for writing.
// A write grant implies read of the same names.
type ReadWrite struct {
	Read  []string `yaml:"read,omitempty" json:"read,omitempty"`
	Write []string `yaml:"write,omitempty" json:"write,omitempty"`
}

// EventGrants lists topics the function may publish to.
type EventGrants struct {
	Publish []string `yaml:"publish,omitempty" json:"publish,omitempty"`
}

// EgressGrants lists host patterns fetch may reach: "api.example.com",
// "*.example.com", an IP address or a CIDR, optionally with ":port"
// (ParseHostPattern is the grammar; Patterns parses them all). An IP
// literal or CIDR here is the only way to reach a loopback, private or
// link-local address.
type EgressGrants struct {
	Hosts []string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
}

// Limits cap what one invocation may use. Zero values mean the defaults.
type Limits struct {
	Timeout     Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Memory      ByteSize `yaml:"memory,omitempty" json:"memory,omitempty"`
	Concurrency int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	MaxBody     ByteSize `yaml:"max_body,omitempty" json:"max_body,omitempty"`         // request body cap
	MaxResponse ByteSize `yaml:"max_response,omitempty" json:"max_response,omitempty"` // response cap
	// Per-invocation caps on capabilities: fetch calls, bytes moved by
	// fetch (request bodies sent and response bodies received), events
	// published (object changes announce themselves and are not counted),
	// and the size of one event.
	MaxFetches   int      `yaml:"max_fetches,omitempty" json:"max_fetches,omitempty"`
	MaxEgress    ByteSize `yaml:"max_egress,omitempty" json:"max_egress,omitempty"`
	MaxPublishes int      `yaml:"max_publishes,omitempty" json:"max_publishes,omitempty"`
	MaxEventSize ByteSize `yaml:"max_event_size,omitempty" json:"max_event_size,omitempty"`
}

// Limits on schema files, enforced where they are read (CLI) and where
// they arrive (deploy).
const (
	MaxSchemaFileSize = 256 << 10
	MaxSchemaFiles    = 64
)

// DefaultContentTypes are the media types a route with a body schema
// accepts when the manifest names none.
var DefaultContentTypes = []string{"application/json"}

// Defaults applied by WithDefaults.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMemory      = 64 << 20
	DefaultConcurrency = 10
	DefaultMaxBody     = 6 << 20
	DefaultMaxResponse = 6 << 20
	// Per-invocation capability caps: generous for a handler's real work,
	// small enough that one runaway invocation cannot fan out without end.
	DefaultMaxFetches   = 50
	DefaultMaxEgress    = 16 << 20
	DefaultMaxPublishes = 100
	DefaultMaxEventSize = 256 << 10
	DefaultMaxAttempts  = 3
	DefaultJWTSkew      = 60 * time.Second
	DefaultHMACHeader   = "Aegis-Signature"
)

// DefaultJWTAlgorithms are the algorithms a jwt route accepts when its
// manifest names none: RS256, which every OpenID Connect issuer supports.
var DefaultJWTAlgorithms = []string{"RS256"}

// Duration is a time.Duration written as "2s", "150ms".
type Duration time.Duration

// ByteSize is a size written as "64MiB", "512KiB", "1MB" or a plain number of bytes.
type ByteSize int64
