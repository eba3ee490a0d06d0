// Package adminapi owns the JSON shapes of the admin API
// (docs/admin-api.md): the bodies internal/admin reads and writes, and
// package client sends and decodes, declared once so that the two cannot
// drift apart. Package client re-exports them under their old names
// (client.App is adminapi.App), so most callers never import this package.
//
// It holds types, and the name of the one header an answer carries beside
// its body (HeaderFunctionError), and nothing else: no behaviour, no validation (the server
// decodes strictly and checks each field itself), and imports only the
// standard library and manifest. A field added here appears on the wire
// at once, for both sides; rename or drop one only with the docs, since
// clients of other versions read these bodies too.
//
// The error body, {"error","request_id"}, is not declared here: both the
// gateway and the admin API answer with it, and gateway.WriteError writes
// it for both.
package adminapi

import (
	"time"

	"github.com/aegis-platform/aegis/manifest"
)

// HeaderFunctionError is the header of a failed invoke's answer (POST
// /v1/apps/{app}/functions/{fn}/invoke) that carries the function's own
// error message: the last line it logged at error level before failing,
// one line of at most 512 bytes. The body stays the error body every edge
// answers ("function failed"); only the admin API sends this header, never
// the gateway.
const HeaderFunctionError = "Aegis-Function-Error"

// Health is the answer of GET /v1/health: Status is "ok".
type Health struct {
	Status string `json:"status"`
}

// StoredModule is the answer of PUT /v1/modules/{sha256}: the hex SHA-256
// the module is stored under.
type StoredModule struct {
	SHA256 string `json:"sha256"`
}

// DeployRequest is the body of POST /v1/apps/{app}/deploy: the manifest
// exactly as written (so the server's errors can name its lines), the file
// name to use in those errors, and the module (by SHA-256, uploaded
// beforehand) of every function. Schemas carries the JSON Schema files the
// manifest names (and those they reach by $ref), by the name the manifest
// uses, so the server never reads the caller's file system.
type DeployRequest struct {
	Manifest string            `json:"manifest"`
	File     string            `json:"file"`
	Modules  map[string]string `json:"modules"`           // function name → hex SHA-256
	Schemas  map[string]string `json:"schemas,omitempty"` // schema file name → contents
	// Accept waives findings of the deploy gate by id, each with the
	// reason recorded in the audit log (docs/scan.md).
	Accept []Waiver `json:"accept,omitempty"`
}

// Waiver accepts one finding of the deploy gate, by id, for a reason.
type Waiver struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Finding is one finding of the deploy gate (docs/scan.md): the server's
// own check of what a deploy carries. Severity is critical, high, medium,
// low or info; Accepted is set when the deploy waived it.
type Finding struct {
	ID       string  `json:"id"`
	Rule     string  `json:"rule"`
	Severity string  `json:"severity"`
	Function string  `json:"function"`
	File     string  `json:"file"`
	Line     int     `json:"line"`
	Message  string  `json:"message"`
	Fix      string  `json:"fix,omitempty"`
	Accepted *Waiver `json:"accepted,omitempty"`
}

// App is one deployed app and its active version: an element of
// GET /v1/apps, and the answer of a deploy or a rollback. Unchanged is set
// on the answer of a deploy of exactly what is active (same manifest,
// modules and schema files) and of a rollback to the active version: no
// version was recorded or activated, Version is the one already active.
type App struct {
	App        string    `json:"app"`
	Version    string    `json:"version"` // a label such as "v3"
	Functions  []string  `json:"functions"`
	DeployedAt time.Time `json:"deployed_at"`
	Unchanged  bool      `json:"unchanged,omitempty"`
	// Findings are what the server's deploy gate found in a deploy that
	// it let through (below its level, or accepted); only on a deploy's
	// answer.
	Findings []Finding `json:"findings,omitempty"`
}

// RollbackRequest is the optional body of POST /v1/apps/{app}/rollback:
// To is the version number to make active (3 for "v3"); 0, or no body,
// means the version active before the current one.
type RollbackRequest struct {
	To int `json:"to,omitempty"`
}

// Version is one recorded version of an app, an element of
// GET /v1/apps/{app}/versions (oldest first): its label and number, whether
// it is the active one, when it was deployed, the manifest file name it was
// deployed from and each function's module.
type Version struct {
	Version   string            `json:"version"` // a label such as "v3"
	Number    int               `json:"number"`
	Active    bool              `json:"active"`
	CreatedAt time.Time         `json:"created_at"`
	File      string            `json:"file,omitempty"`
	Modules   map[string]string `json:"modules"` // function name → hex SHA-256
}

// Function is one function of an app's active version (GET /v1/functions).
type Function struct {
	App       string             `json:"app"`
	Function  string             `json:"function"`
	Version   string             `json:"version"`
	SHA256    string             `json:"sha256"`
	Triggers  []manifest.Trigger `json:"triggers"`
	Isolation string             `json:"isolation"`
	// Grants, Limits and Budget are the function's as its manifest
	// declares them (limits left out take the server's defaults).
	Grants manifest.Grants  `json:"grants"`
	Limits manifest.Limits  `json:"limits"`
	Budget *manifest.Budget `json:"budget,omitempty"`
}

// Route is one HTTP route (GET /v1/routes). A private one is not served by
// the gateway; only functions of its app with an invoke grant can call it.
type Route struct {
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	App      string   `json:"app"`
	Function string   `json:"function"`
	Public   bool     `json:"public"`
	Private  bool     `json:"private,omitempty"`
	Auth     []string `json:"auth"`
}

// CreateKeyRequest is the body of POST /v1/keys. Scopes are apps ("app")
// and functions ("app/function"), none meaning all; ExpiresIn is a Go
// duration ("720h"), empty for never; Labels are notes for people and
// grant nothing. Rate ("10/s", "600/m", "1000/h") limits the key's
// requests, with Burst the bucket's size (default the rate's count; it
// needs a rate); Budget ("1000/day", "/hour", "/month") caps its
// invocations. Empty is no limit.
type CreateKeyRequest struct {
	Name      string            `json:"name"`
	Scopes    []string          `json:"scopes,omitempty"`
	ExpiresIn string            `json:"expires_in,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Rate      string            `json:"rate,omitempty"`
	Burst     string            `json:"burst,omitempty"`
	Budget    string            `json:"budget,omitempty"`
}

// RotateKeyRequest is the body of POST /v1/keys/{name}/rotate: how long
// the old secret keeps working, as a Go duration ("24h"); empty is none.
type RotateKeyRequest struct {
	Overlap string `json:"overlap"`
}

// NewKey is a freshly created or rotated API key. Key is shown this once;
// the server keeps only what it needs to verify it.
type NewKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Key describes an API key without its secret (GET /v1/keys).
type Key struct {
	Name string `json:"name"`
	// ID is the key's non-secret id, the part after "aegis_": what the
	// guard names a suspended key by (docs/guard.md).
	ID        string     `json:"id,omitempty"`
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
	// Rate, Burst and Budget are the key's limits, written as
	// CreateKeyRequest takes them; absent for none. Burst is shown when
	// a rate is set, the rate's count when it was not given.
	Rate   string `json:"rate,omitempty"`
	Burst  string `json:"burst,omitempty"`
	Budget string `json:"budget,omitempty"`
}

// KeyGeneration is the previous secret of a rotated key.
type KeyGeneration struct {
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// WebhookSecret is a new signing secret for an app's hmac routes (POST
// /v1/apps/{app}/webhook-secrets/{name}). Secret is base64url without
// padding; the answer is the only time it is shown.
type WebhookSecret struct {
	App    string `json:"app"`
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// DeadLetter is an event that exhausted its delivery attempts, or was
// refused at once (GET /v1/dlq). ID is its sequence in the dead-letter
// stream, the id POST /v1/dlq/{id}/replay takes.
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

// ReplayedDeadLetter is the answer of POST /v1/dlq/{id}/replay: the dead
// letter published again.
type ReplayedDeadLetter struct {
	ID uint64 `json:"id"`
}

// CreateAdminTokenRequest is the body of POST /v1/tokens: a name, a role
// (viewer, operator, deployer, admin) and the apps the token may act on,
// none meaning all.
type CreateAdminTokenRequest struct {
	Name string   `json:"name"`
	Role string   `json:"role"`
	Apps []string `json:"apps,omitempty"`
}

// NewAdminToken is a freshly created admin token. Token is shown this
// once; the server keeps only its hash.
type NewAdminToken struct {
	Name  string   `json:"name"`
	Role  string   `json:"role"`
	Apps  []string `json:"apps,omitempty"`
	Token string   `json:"token"`
}

// AdminToken describes an admin token without its secret (GET /v1/tokens).
type AdminToken struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Apps are the apps the token may act on; empty means all.
	Apps       []string   `json:"apps,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	Revoked    bool       `json:"revoked"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// MFAStatus says whether the server has an authenticator and whether
// dangerous changes need a code from it (GET /v1/mfa, and the answer of
// POST /v1/mfa/confirm).
type MFAStatus struct {
	Enrolled   bool       `json:"enrolled"`
	EnrolledAt *time.Time `json:"enrolled_at,omitempty"`
	// Pending: an enrollment waits for its first code.
	Pending bool `json:"pending"`
	// StepUp is the server's mode (auto, always, off); Required says
	// whether dangerous changes need a code right now.
	StepUp   string `json:"step_up"`
	Required bool   `json:"required"`
}

// MFAEnrollment is a started enrollment (POST /v1/mfa/enroll): the
// otpauth:// URI an authenticator app reads. It holds the secret; show it
// to the person enrolling and nowhere else.
type MFAEnrollment struct {
	URI string `json:"uri"`
}

// MFAConfirmRequest is the body of POST /v1/mfa/confirm: a current code of
// the authenticator being enrolled.
type MFAConfirmRequest struct {
	Code string `json:"code"`
}
