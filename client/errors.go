package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aegis-platform/aegis"
)

// Conditions callers test with errors.Is on an error returned by the client.
// Except for ErrUnauthorized they are the platform's own sentinels, so
// errors.Is(err, aegis.ErrNotFound) works as well.
var (
	// ErrUnauthorized: the admin token is missing or wrong (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrPermissionDenied: the token is valid but may not do this (HTTP 403).
	ErrPermissionDenied = aegis.ErrPermissionDenied
	// ErrNotFound: the app, function, key, module or dead letter does not
	// exist (HTTP 404).
	ErrNotFound = aegis.ErrNotFound
	// ErrConflict: the change collides with the current state, such as a key
	// name already taken or a rollback without a previous version (HTTP 409).
	ErrConflict = aegis.ErrConflict
	// ErrInvalidArgument: the request was refused as malformed, such as a bad
	// manifest (HTTP 400) or a module that does not compile (HTTP 422).
	ErrInvalidArgument = aegis.ErrInvalidArgument
	// ErrLimitExceeded: a size or rate limit was hit (HTTP 413, 429).
	ErrLimitExceeded = aegis.ErrLimitExceeded
	// ErrUnavailable: the server cannot serve now (HTTP 503).
	ErrUnavailable = aegis.ErrUnavailable
	// ErrStepUpRequired: a dangerous change sent without an authenticator
	// code while one is required (HTTP 403 with Aegis-Step-Up: required).
	ErrStepUpRequired = errors.New("step-up code required")
)

// APIError is an error answer of the admin API: its HTTP status, the
// message meant for the caller and the request id that joins it to the
// server's logs.
type APIError struct {
	Status    int
	Message   string
	RequestID string
	// StepUp: the change needs a current authenticator code (--otp); the
	// same call with one would go through.
	StepUp bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	fmt.Fprintf(&b, " (HTTP %d", e.Status)
	if e.RequestID != "" {
		fmt.Fprintf(&b, ", request id %s", e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// Is maps the status to the sentinel errors above.
func (e *APIError) Is(target error) bool {
	if target == ErrStepUpRequired {
		return e.StepUp
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrPermissionDenied
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return target == ErrInvalidArgument
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return target == ErrLimitExceeded
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	}
	return false
}

// maxErrorBody bounds how much of an error answer is read: error bodies are
// short, and a proxy's HTML page should not end up whole in a message.
const maxErrorBody = 64 << 10

// decodeError turns a non-success answer into an *APIError. Answers that are
// not the API's JSON shape (from a proxy, say) still give a useful message.
func decodeError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"),
		StepUp: resp.StatusCode == http.StatusForbidden && resp.Header.Get("Aegis-Step-Up") == "required"}
	var body struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		e.Message = body.Error
		if body.RequestID != "" {
			e.RequestID = body.RequestID
		}
		return e
	}
	e.Message = strings.TrimSpace(string(raw))
	if e.Message == "" || len(e.Message) > 200 || strings.ContainsAny(e.Message, "<\n") {
		e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	if e.Message == "" {
		e.Message = "unexpected answer"
	}
	return e
}
