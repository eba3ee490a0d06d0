package sandbox

import (
	"errors"
	"fmt"

	"github.com/aegis-platform/aegis"
)

// Errors returned by Compile, NewFunction and Invoke. Callers test them with
// errors.Is; the limit errors also match aegis.ErrLimitExceeded and the
// module errors aegis.ErrInvalidArgument, so an edge that only knows the
// root sentinels still maps them to the right status.
var (
	// ErrTimeout: the invocation ran past Limits.Timeout and was stopped.
	ErrTimeout = &sandboxError{msg: "function timed out", kind: aegis.ErrLimitExceeded}
	// ErrMemory: the guest asked for more linear memory than Limits.Memory.
	ErrMemory = &sandboxError{msg: "function exceeded its memory limit", kind: aegis.ErrLimitExceeded}
	// ErrResponseTooLarge: the response body was larger than Limits.MaxResponse.
	ErrResponseTooLarge = &sandboxError{msg: "function response too large", kind: aegis.ErrLimitExceeded}
	// ErrTrap: the guest failed: a Wasm trap, a panic, a non-zero exit code, or
	// a handler that reported failure. The message after the chain says which;
	// it is for logs, never for clients.
	ErrTrap = errors.New("function failed")

	// ErrUnknownImport: the module imports something the sandbox does not
	// provide. Refused at Compile so a deploy fails instead of a request.
	ErrUnknownImport = &sandboxError{msg: "module imports an unknown function", kind: aegis.ErrInvalidArgument}
	// ErrInvalidModule: the bytes are not a usable Wasm module (do not compile,
	// export neither aegis_handle nor _start, or export them with wrong types).
	ErrInvalidModule = &sandboxError{msg: "invalid module", kind: aegis.ErrInvalidArgument}
)

// sandboxError is a sentinel that also matches a root aegis sentinel, so
// errors.Is(err, ErrTimeout) and errors.Is(err, aegis.ErrLimitExceeded) both
// hold without the message repeating "limit exceeded".
type sandboxError struct {
	msg  string
	kind error
}

func (e *sandboxError) Error() string        { return e.msg }
func (e *sandboxError) Is(target error) bool { return target == e.kind }

// trapf wraps ErrTrap with detail for the logs.
func trapf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTrap}, args...)...)
}
