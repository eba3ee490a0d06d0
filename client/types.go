package client

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/aegis-platform/aegis/manifest"
)

// DeployRequest is the body of a deploy: the manifest exactly as written
// (so the server's errors can name its lines), the file name to use in
// those errors, and the module (by SHA-256, uploaded beforehand) of every
// function. Schemas carries the JSON Schema files the manifest names (and
// those they reach by $ref), by the name the manifest uses, so the server
// never reads the caller's file system.
type DeployRequest struct {
	Manifest string            `json:"manifest"`
	File     string            `json:"file"`
	Modules  map[string]string `json:"modules"`           // function name → hex SHA-256
	Schemas  map[string]string `json:"schemas,omitempty"` // schema file name → contents
}

// DeployResult is the version of an app a deploy or a rollback made active.
type DeployResult = App

// App is one deployed app and its active version.
type App struct {
	App        string    `json:"app"`
	Version    string    `json:"version"` // a label such as "v3"
	Functions  []string  `json:"functions"`
	DeployedAt time.Time `json:"deployed_at"`
}

// Function is one function of an app's active version.
type Function struct {
	App       string             `json:"app"`
	Function  string             `json:"function"`
	Version   string             `json:"version"`
	SHA256    string             `json:"sha256"`
	Triggers  []manifest.Trigger `json:"triggers"`
	Isolation string             `json:"isolation"`
}

// Route is one HTTP route the gateway serves.
type Route struct {
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	App      string   `json:"app"`
	Function string   `json:"function"`
	Public   bool     `json:"public"`
	Private  bool     `json:"private,omitempty"` // reachable only through invoke grants
	Auth     []string `json:"auth"`
}

// NewKey is a freshly created API key. Key is shown this once; the server
// keeps only what it needs to verify it.
type NewKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Key describes an API key without its secret.
type Key struct {
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Scopes are the apps ("app") and functions ("app/function") the key
	// may call; empty means all.
	Scopes     []string          `json:"scopes,omitempty"`
	ExpiresAt  *time.Time        `json:"expires_at,omitempty"`
	Expired    bool              `json:"expired,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	LastUsedAt *time.Time        `json:"last_used_at,omitempty"`
	// Previous is the secret a rotation replaced, while it still works.
	Previous *KeyGeneration `json:"previous,omitempty"`
}

// KeyGeneration is the previous secret of a rotated key.
type KeyGeneration struct {
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// KeyOptions narrow a new API key. The zero value makes a key that may call
// every API-key route and never expires.
type KeyOptions struct {
	Scopes    []string          // "app" or "app/function"
	ExpiresIn time.Duration     // 0: never
	Labels    map[string]string // notes for people; they grant nothing
}

// DeadLetter is an event that exhausted its delivery attempts.
type DeadLetter struct {
	ID        uint64    `json:"id"`
	App       string    `json:"app"`
	Function  string    `json:"function"`
	Topic     string    `json:"topic"`
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	RequestID string    `json:"request_id"`
	Time      time.Time `json:"time"`
}

// InvokeResult is a function's answer to a direct invocation.
type InvokeResult struct {
	Status    int
	Header    http.Header
	Body      []byte
	RequestID string
}

// LogQuery selects log records. Empty App and Function match everything;
// Limit 0 leaves the number of past records to the server; Follow keeps the
// stream open for new records until the context ends.
type LogQuery struct {
	App      string
	Function string
	Follow   bool
	Limit    int
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
