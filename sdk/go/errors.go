package aegis

import "errors"

// Errors that platform calls return, tested with errors.Is. The concrete
// error is a *CallError carrying the host's result code and message.
var (
	ErrPermissionDenied = errors.New("permission denied") // not granted in aegis.yaml
	ErrNotFound         = errors.New("not found")         // no such key or object
	ErrInvalidArgument  = errors.New("invalid argument")  // malformed name, request or pointer
	ErrLimitExceeded    = errors.New("limit exceeded")    // a size or rate cap was hit
	ErrUnavailable      = errors.New("unavailable")       // the platform cannot serve this now
	ErrInternal         = errors.New("internal error")    // the platform failed; see its logs
)

// Result codes of the ABI (docs/abi.md).
const (
	CodePermissionDenied = -1
	CodeNotFound         = -2
	CodeInvalidArgument  = -3
	CodeLimitExceeded    = -4
	CodeUnavailable      = -5
	CodeInternal         = -6
)

// CallError is a failed platform call. (It is not named Error because
// Error is the function that builds an error response.)
type CallError struct {
	Code    int    // a negative ABI result code
	Message string // the host's explanation
}

func (e *CallError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if s := e.sentinel(); s != nil {
		return s.Error()
	}
	return "platform call failed"
}

// Is makes errors.Is(err, ErrNotFound) and friends work on *CallError.
func (e *CallError) Is(target error) bool { return target != nil && target == e.sentinel() }

func (e *CallError) sentinel() error {
	switch e.Code {
	case CodePermissionDenied:
		return ErrPermissionDenied
	case CodeNotFound:
		return ErrNotFound
	case CodeInvalidArgument:
		return ErrInvalidArgument
	case CodeLimitExceeded:
		return ErrLimitExceeded
	case CodeUnavailable:
		return ErrUnavailable
	default:
		return ErrInternal
	}
}

// check turns a result code into an error (nil for code >= 0).
func check(code int32) error {
	if code >= 0 {
		return nil
	}
	return resultError(code)
}

// resultError builds the *CallError for a negative code, with the message the
// host left in the result buffer.
func resultError(code int32) error {
	e := &CallError{Code: int(code)}
	if n := hostResultLen(); n > 0 {
		buf := make([]byte, n)
		if got := hostResultRead(buf); got > 0 {
			e.Message = string(buf[:got])
		}
	}
	return e
}

// result returns the n bytes a successful call left in the result buffer.
func result(n int32) ([]byte, error) {
	if n < 0 {
		return nil, resultError(n)
	}
	buf := make([]byte, n)
	if n > 0 {
		if got := hostResultRead(buf); got != n {
			if got < 0 {
				return nil, resultError(got)
			}
			return nil, &CallError{Code: CodeInternal, Message: "short result read"}
		}
	}
	return buf, nil
}
