// Package repocheck holds tests that keep conventions of the whole code
// base true, where no compiler or vet check does: log lines use the shared
// keys of telemetry/logkey, never string literals, so one query finds every
// line with a request id or an error; and ARCHITECTURE.md's map of
// packages says what each internal package really imports. It has no code
// of its own.
package repocheck
