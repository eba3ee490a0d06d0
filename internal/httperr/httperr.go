// Package httperr is where a failure becomes what a caller is shown: the
// HTTP status and client-safe message of every sentinel error, and the one
// error body ({"error", "request_id"}) that the gateway, the admin API and
// calls between functions (invoke) all answer with. Keeping the mapping in
// one place keeps those three from drifting apart: the same failure gets
// the same status wherever it surfaces.
package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// Failure is how one failure is shown outside the platform.
type Failure struct {
	// Status is the HTTP status.
	Status int
	// Message is safe for any client: it names the condition and never
	// carries internals (a trap's text, a path, a stack).
	Message string
	// Kind is the root sentinel a function calling another (invoke) is
	// given, so it can tell a limit from a failure; nil when the failure
	// fits none and the error itself is passed on.
	Kind error
}

// Messages that callers and tests compare against.
const (
	MsgTimeout          = "function timed out"
	MsgResponseTooLarge = "function response over its max_response"
	MsgFailed           = "function failed"
	MsgConcurrency      = "function is at its concurrency limit"
	MsgRateLimited      = "rate limit exceeded"
	MsgBudget           = "budget exhausted"
	MsgUnavailable      = "service unavailable"
	MsgCancelled        = "request cancelled"
	MsgNotFound         = "not found"
	MsgForbidden        = "forbidden"
	MsgInvalid          = "invalid request"
	MsgConflict         = "conflict"
	MsgInternal         = "internal error"
)

// Of maps err to its Failure. The order matters: the sandbox's errors also
// match root sentinels (a timeout is a limit), so the specific ones come
// first.
func Of(err error) Failure {
	var be BudgetError
	switch {
	case errors.As(err, &be):
		return Failure{http.StatusTooManyRequests, MsgBudget, aegis.ErrLimitExceeded}
	case errors.Is(err, sandbox.ErrTimeout):
		return Failure{http.StatusGatewayTimeout, MsgTimeout, aegis.ErrLimitExceeded}
	case errors.Is(err, sandbox.ErrResponseTooLarge):
		return Failure{http.StatusBadGateway, MsgResponseTooLarge, aegis.ErrLimitExceeded}
	case errors.Is(err, guard.ErrThrottled):
		return Failure{http.StatusTooManyRequests, MsgRateLimited, aegis.ErrLimitExceeded}
	case errors.Is(err, sandbox.ErrMemory), errors.Is(err, sandbox.ErrTrap):
		// The guest's own failure: what went wrong is in its logs.
		return Failure{http.StatusInternalServerError, MsgFailed, aegis.ErrUnavailable}
	case errors.Is(err, aegis.ErrLimitExceeded):
		// On the invocation path the limit left is the function's pool.
		return Failure{http.StatusTooManyRequests, MsgConcurrency, aegis.ErrLimitExceeded}
	case errors.Is(err, aegis.ErrUnavailable):
		return Failure{http.StatusServiceUnavailable, MsgUnavailable, aegis.ErrUnavailable}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Failure{http.StatusServiceUnavailable, MsgCancelled, aegis.ErrUnavailable}
	case errors.Is(err, aegis.ErrNotFound):
		return Failure{http.StatusNotFound, MsgNotFound, aegis.ErrNotFound}
	case errors.Is(err, aegis.ErrPermissionDenied):
		return Failure{http.StatusForbidden, MsgForbidden, aegis.ErrPermissionDenied}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return Failure{http.StatusBadRequest, MsgInvalid, aegis.ErrInvalidArgument}
	case errors.Is(err, aegis.ErrConflict):
		return Failure{http.StatusConflict, MsgConflict, aegis.ErrConflict}
	default:
		return Failure{http.StatusInternalServerError, MsgInternal, nil}
	}
}

// BudgetError is a refusal by a spent budget (usage.ExhaustedError): the
// 429 names the budget and when it resets, and Retry-After waits for it.
type BudgetError interface {
	error
	BudgetScope() string       // "app", "function" or "key"
	BudgetResetsAt() time.Time // the end of the budget's window
}

// Body is the only shape of error a client ever sees. Budget and ResetsAt
// are set on a refusal by a spent budget only.
type Body struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
	Budget    string `json:"budget,omitempty"`
	ResetsAt  string `json:"resets_at,omitempty"`
}

// Marshal returns the error body for msg, as Write sends it.
func Marshal(msg, reqID string) []byte {
	b, err := json.Marshal(Body{Error: msg, RequestID: reqID})
	if err != nil { // a struct of two strings always encodes
		return []byte(`{"error":"internal error"}`)
	}
	return append(b, '\n')
}

// Write answers with status and the error body for msg. It never caches
// and never lets a browser sniff the body into something else.
func Write(w http.ResponseWriter, status int, msg, reqID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
		// A caller at a limit may come back; one second is the shortest
		// wait HTTP can say.
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = w.Write(Marshal(msg, reqID))
}

// WriteErr answers with err's Failure and returns it, for the caller's log.
// A spent budget's answer also names the budget and when it resets, and
// Retry-After is the seconds until then.
func WriteErr(w http.ResponseWriter, err error, reqID string) Failure {
	f := Of(err)
	var be BudgetError
	if !errors.As(err, &be) {
		Write(w, f.Status, f.Message, reqID)
		return f
	}
	resets := be.BudgetResetsAt().UTC()
	wait := int64(math.Ceil(time.Until(resets).Seconds()))
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(max(wait, 1), 10))
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(f.Status)
	b, jerr := json.Marshal(Body{Error: f.Message, RequestID: reqID, Budget: be.BudgetScope(), ResetsAt: resets.Format(time.RFC3339)})
	if jerr != nil { // strings always encode
		_, _ = w.Write(Marshal(f.Message, reqID))
		return f
	}
	_, _ = w.Write(append(b, '\n'))
	return f
}
