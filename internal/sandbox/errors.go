package sandbox

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

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

// MaxFunctionMessage bounds a function's own error message (FunctionError):
// enough for a sentence and the error chain behind it, small enough to sit
// in a header, a dead letter and a log record.
const MaxFunctionMessage = 512

// FunctionError is an invocation failure (ErrTrap) for which the function
// said what went wrong: the last line it logged at error level during the
// invocation, as the SDKs do before they report failure (an event
// handler's error, a recovered panic). Message is that line's first line,
// at most MaxFunctionMessage bytes.
//
// Error does not include Message: the chain goes to the server's log and,
// as a kind, to a calling function, and the function's words (which may
// quote the data it handled) belong to its own developer's tools only. They
// ask for it with FunctionMessage.
type FunctionError struct {
	Message string
	err     error
}

func (e *FunctionError) Error() string { return e.Unwrap().Error() }

// Unwrap returns the failure as the platform saw it; ErrTrap for a
// FunctionError built outside this package.
func (e *FunctionError) Unwrap() error {
	if e.err == nil {
		return ErrTrap
	}
	return e.err
}

// FunctionMessage returns the function's own error message carried by err,
// or "" when it gave none.
func FunctionMessage(err error) string {
	var fe *FunctionError
	if errors.As(err, &fe) {
		return fe.Message
	}
	return ""
}

// functionMessage is the part of a line logged at error level that is
// kept as the function's error message: its first line (a panic's stack
// follows on the next ones), cut to MaxFunctionMessage bytes on a rune
// boundary, valid UTF-8 without control characters, so it can go into a
// header or a table cell as it is.
func functionMessage(line string) string {
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	// Made valid first, then cut: a replacement character is longer than
	// the byte it replaces.
	line = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(line, "\uFFFD")))
	if len(line) > MaxFunctionMessage {
		i := MaxFunctionMessage
		for i > 0 && !utf8.RuneStart(line[i]) {
			i--
		}
		line = line[:i]
	}
	return line
}
