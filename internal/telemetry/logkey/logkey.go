// Package logkey holds the attribute keys every Aegis log line shares, so a
// single query ("request_id=…", "security=true") finds a request or every
// security event across packages. It holds constants only.
package logkey

// Keys of structured log attributes.
const (
	// RequestID joins every line a request causes, across events and functions.
	RequestID = "request_id"
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
