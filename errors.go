// Package aegis holds the few domain types every layer of the platform shares:
// the sentinel errors that callers test with errors.Is. Everything else lives
// under internal/ (the machinery) or in manifest/ and client/ (what users
// program against).
package aegis

import "errors"

// Sentinel errors. Host functions map them to ABI result codes, the gateway
// and admin API map them to HTTP statuses; everything in between wraps them
// with %w so the chain keeps its meaning.
var (
	// ErrPermissionDenied: the caller's grants or credentials do not allow it.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotFound: the named key, object, app, route or version does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: the caller sent something malformed (bad key, bad manifest).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrLimitExceeded: a size, time, memory or concurrency cap was hit.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrUnavailable: a dependency (NATS, a function version) cannot serve now.
	ErrUnavailable = errors.New("unavailable")
	// ErrConflict: the change collides with the current state (for example a
	// rollback with no previous version).
	ErrConflict = errors.New("conflict")
)
