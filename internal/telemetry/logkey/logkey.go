// Package logkey holds the attribute keys every Aegis log line shares, so a
// single query ("request_id=…", "security=true") finds a request or every
// security event across packages. It holds constants only.
package logkey

// Keys of structured log attributes.
const (
	// RequestID joins every line a request causes, across events and functions.
	RequestID = "request_id"
	// TraceID is the W3C trace id an invocation belongs to (`aegis trace`).
	TraceID = "trace_id"
	// App, Function and Version name the function version a line is about.
	App      = "app"
	Function = "function"
	Version  = "version"
	// Capability names a host capability: "kv.put", "objects.get", "fetch".
	Capability = "capability"
	// Resource is what a capability was asked to touch: a table/key, an
	// object key, a topic, a host. Never a value.
	Resource = "resource"
	// Security is true on lines that record a security-relevant event
	// (denials, auth failures, limit hits).
	Security = "security"
	// Alert is true on lines an operator should act on (a loop stopped,
	// a budget alert), on top of Security where it applies.
	Alert = "alert"
	// Origin is the principal a chain of invocations is charged to:
	// "key:NAME", "jwt:ISSUER#SUBJECT", "webhook:NAME", "schedule", "admin".
	Origin = "origin"
	// Reason says why something was refused, in a few words.
	Reason = "reason"
	// Host, Method, Status and Duration describe an outbound HTTP call.
	Host     = "host"
	Method   = "method"
	Status   = "status"
	Duration = "duration"
	// Error is the text of an error that ended an operation.
	Error = "error"
	// Route is a route as its manifest declares it: "POST /thumbs/{id}".
	Route = "route"
	// Path is a route's path pattern, never the raw path a client chose.
	Path = "path"
	// Remote is the client's network address.
	Remote = "remote"
	// Caller is the calling "app/function" of a call between functions.
	Caller = "caller"
	// KeyName is an API key's name, never the key.
	KeyName = "key_name"
	// Kind says which part of a request a refusal is about ("body",
	// "query", "content_type", ...).
	Kind = "kind"
)

// Keys of the platform's own lines: events, keys and tokens, the server.
const (
	// EventID is an event's id (Aegis-Event-Id); ReplacedEventID the id of
	// the event a replay stands for; ReplayedBy the admin who replayed it.
	EventID         = "event_id"
	ReplacedEventID = "replaced_event_id"
	ReplayedBy      = "replayed_by"
	// Topic is an event's topic; Trigger a trigger as the manifest
	// declares it; Cron a schedule's expression.
	Topic   = "topic"
	Trigger = "trigger"
	Cron    = "cron"
	// Attempt is a delivery's attempt number, Attempts how many were made;
	// Delay the wait before the next one; DeadLetter a dead letter's id.
	Attempt    = "attempt"
	Attempts   = "attempts"
	Delay      = "delay"
	DeadLetter = "dead_letter"
	// Seq is a message's sequence number in its stream.
	Seq = "seq"
	// Hop counts the calls and events in a chain so far.
	Hop = "hop"
	// Subject is a caller's subject (a JWT's sub, an app/function).
	Subject = "subject"
	// Key is a table or object key (never a value); Scopes an API key's
	// scopes; SecretName a webhook secret's name; TokenName an admin
	// token's name and Role its role; ExpiresIn how long a credential
	// stays valid; Overlap how long an old key keeps working after a
	// rotation.
	Key        = "key"
	Scopes     = "scopes"
	SecretName = "secret_name"
	TokenName  = "token_name"
	Role       = "role"
	ExpiresIn  = "expires_in"
	Overlap    = "overlap"
	// KeyRate, KeyBurst and KeyBudget are an API key's limits as created;
	// RateKey is the bucket a rate limit refusal counted in: a key's name
	// or a caller ("jwt:ISSUER#SUBJECT"), never a client address (that
	// is Remote).
	KeyRate   = "key_rate"
	KeyBurst  = "key_burst"
	KeyBudget = "key_budget"
	RateKey   = "rate_key"
	// By names the admin principal who made a change; Apps the apps a
	// token is limited to; Changes what a dangerous change opens up;
	// Replacing whether an enrollment replaces an earlier one.
	By        = "by"
	Apps      = "apps"
	Changes   = "changes"
	Replacing = "replacing"
	// InvocationID is an asynchronous invocation's id.
	InvocationID = "invocation_id"
	// Stream and Consumer name a JetStream stream and consumer, Replicas
	// how many copies a stream has and Want how many it should; Panic and
	// Stack what a recovered panic carried.
	Stream   = "stream"
	Consumer = "consumer"
	Replicas = "replicas"
	Want     = "want"
	Panic    = "panic"
	Stack    = "stack"
	// File is a file the server read or wrote; URL an address it serves
	// or calls; Gateway and Admin its listeners' addresses; Component the
	// part of the server a line comes from; Source where something came
	// from; Data and Output are what a child process or a store reported.
	File      = "file"
	URL       = "url"
	Gateway   = "gateway"
	Admin     = "admin"
	Component = "component"
	Source    = "source"
	Data      = "data"
	Output    = "output"
)

// Budgets and usage (internal/usage).
const (
	// Budget is which budget a line is about: "app", "function" or "key".
	Budget = "budget"
	// Window is a budget's window ("hour", "day", "month"); ResetsAt when
	// the current one ends (RFC 3339).
	Window   = "window"
	ResetsAt = "resets_at"
	// Amount is the budget amount an alert is about ("invocations",
	// "gb_seconds", "egress"); Percent how much of it is used.
	Amount  = "amount"
	Percent = "percent"
	// Holds is how often an event waited for its budget.
	Holds = "holds"
)

// Backpressure and connection hygiene (connlimit, the gateway's async
// bounds, the bus's event backlog).
const (
	// Queue names the bound a refusal hit ("async_caller", "events", …);
	// Bound is that bound's size; Listener the listener a connection came
	// to; Refused how many connections were refused since the last line.
	Queue    = "queue"
	Bound    = "bound"
	Listener = "listener"
	Refused  = "refused"
)

// Logs that never block (funclog, asynclog) and span export (otlp).
const (
	// Dropped is how many log records a full queue dropped since the last
	// line saying so, or how many spans the exporter dropped because its
	// queue was full (a slow or unreachable collector).
	Dropped = "dropped"
)

// The audit log (internal/audit).
const (
	// Count is how many events a line stands for; AuditSeq an audit
	// record's sequence; Action what an admin call did ("deploy").
	Count    = "count"
	AuditSeq = "audit_seq"
	Action   = "action"
)

// The guard (internal/guard).
const (
	// Rule names the guard rule that acted ("brute_force"); BlockID the
	// block it placed or lifted; Target what the rule counted and acted
	// on (an address, a key's id, "app/function", a route, an edge);
	// Actions what it did; AlertID the incident's alert; Signals the
	// signals it counts; Baseline the past average a count was compared
	// with. Message is an alert's one-sentence account.
	Rule     = "rule"
	BlockID  = "block_id"
	Target   = "target"
	Actions  = "actions"
	AlertID  = "alert_id"
	Signals  = "signals"
	Baseline = "baseline"
	Message  = "message"
)

// The guard's rule file (server/guardrules.go).
const (
	// Rules names the rules of a rule file applied.
	Rules = "rules"
)
