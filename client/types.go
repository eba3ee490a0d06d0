package client

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/manifest"
)

// The bodies the admin API answers and takes, declared once in package
// adminapi for this client and the server alike; these names are the
// ones callers of this package have always used.
type (
	// DeployRequest is the body of a deploy: the manifest text, the file
	// name its errors use, each function's module by SHA-256, and the
	// schema files the manifest names.
	DeployRequest = adminapi.DeployRequest
	// Waiver accepts one finding of the deploy gate, by id, for a reason.
	Waiver = adminapi.Waiver
	// Finding is one finding of the server's deploy gate.
	Finding = adminapi.Finding
	// App is one deployed app and its active version.
	App = adminapi.App
	// Version is one recorded version of an app.
	Version = adminapi.Version
	// RollbackRequest names the version a rollback goes to.
	RollbackRequest = adminapi.RollbackRequest
	// Function is one function of an app's active version.
	Function = adminapi.Function
	// Route is one HTTP route the gateway serves, or a private one.
	Route = adminapi.Route
	// NewKey is a freshly created API key; Key is shown this once.
	NewKey = adminapi.NewKey
	// Key describes an API key without its secret.
	Key = adminapi.Key
	// KeyGeneration is the previous secret of a rotated key.
	KeyGeneration = adminapi.KeyGeneration
	// DeadLetter is an event that exhausted its delivery attempts.
	DeadLetter = adminapi.DeadLetter
	// UsageRow is what an app, function and caller used (GET /v1/usage).
	UsageRow = adminapi.UsageRow
	// BudgetState is a budget in its current window.
	BudgetState = adminapi.BudgetState
)

// DeployResult is the version of an app a deploy or a rollback made active.
type DeployResult = App

// KeyOptions narrow a new API key. The zero value makes a key that may call
// every API-key route and never expires.
type KeyOptions struct {
	Scopes    []string          // "app" or "app/function"
	ExpiresIn time.Duration     // 0: never
	Labels    map[string]string // notes for people; they grant nothing
	// Rate limits the key's requests at the gateway, counted per server
	// (zero: none); Burst is the bucket's size (0: the rate's count).
	Rate  manifest.Rate
	Burst int
	// Budget caps the key's invocations per window (zero: none).
	Budget manifest.Quota
}

// InvokeResult is a function's answer to a direct invocation.
type InvokeResult struct {
	Status    int
	Header    http.Header
	Body      []byte
	RequestID string
	// FunctionError is the function's own error message when it failed
	// and said why (the last line it logged at error level); the body is
	// then the generic error body, as the gateway answers.
	FunctionError string
}

// LogQuery selects log records. Empty App and Function match everything;
// Limit 0 leaves the number of past records to the server; Follow keeps the
// stream open for new records until the context ends.
type LogQuery struct {
	App      string
	Function string
	// Trace keeps the records of one trace (its invocations and every
	// line they logged); Since drops records older than it (zero: none).
	Trace  string
	Since  time.Time
	Follow bool
	Limit  int
}

// LogRecord is one structured log line. The fields every record has are
// named; everything else is in Attrs.
type LogRecord struct {
	Time      time.Time
	Level     string
	Msg       string
	App       string
	Function  string
	RequestID string
	Attrs     map[string]any
}

// logRecordFields are the named fields of LogRecord as they appear on the
// wire; they use the platform's shared log keys.
type logRecordFields struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"`
	Msg       string    `json:"msg"`
	App       string    `json:"app,omitempty"`
	Function  string    `json:"function,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

var logRecordKeys = []string{"time", "level", "msg", "app", "function", "request_id"}

// UnmarshalJSON reads one flat log record, moving unnamed keys into Attrs.
func (r *LogRecord) UnmarshalJSON(b []byte) error {
	var f logRecordFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range logRecordKeys {
		delete(all, k)
	}
	if len(all) == 0 {
		all = nil
	}
	*r = LogRecord{
		Time: f.Time, Level: f.Level, Msg: f.Msg,
		App: f.App, Function: f.Function, RequestID: f.RequestID,
		Attrs: all,
	}
	return nil
}

// MarshalJSON writes the record flat again, as the server sent it.
func (r LogRecord) MarshalJSON() ([]byte, error) {
	all := make(map[string]any, len(r.Attrs)+len(logRecordKeys))
	for k, v := range r.Attrs {
		all[k] = v
	}
	all["time"] = r.Time
	all["level"] = r.Level
	all["msg"] = r.Msg
	for k, v := range map[string]string{"app": r.App, "function": r.Function, "request_id": r.RequestID} {
		if v != "" {
			all[k] = v
		}
	}
	return json.Marshal(all)
}
