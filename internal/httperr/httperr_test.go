package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// Every sentinel maps to one status, message and kind, however deeply it is
// wrapped: the gateway, the admin API and invoke all read this table.
func TestEverySentinelMapsOnce(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		msg    string
		kind   error
	}{
		{sandbox.ErrTimeout, 504, MsgTimeout, aegis.ErrLimitExceeded},
		{sandbox.ErrResponseTooLarge, 502, MsgResponseTooLarge, aegis.ErrLimitExceeded},
		{sandbox.ErrMemory, 500, MsgFailed, aegis.ErrUnavailable},
		{sandbox.ErrTrap, 500, MsgFailed, aegis.ErrUnavailable},
		{aegis.ErrLimitExceeded, 429, MsgConcurrency, aegis.ErrLimitExceeded},
		{aegis.ErrUnavailable, 503, MsgUnavailable, aegis.ErrUnavailable},
		{context.Canceled, 503, MsgCancelled, aegis.ErrUnavailable},
		{context.DeadlineExceeded, 503, MsgCancelled, aegis.ErrUnavailable},
		{aegis.ErrNotFound, 404, MsgNotFound, aegis.ErrNotFound},
		{aegis.ErrPermissionDenied, 403, MsgForbidden, aegis.ErrPermissionDenied},
		{aegis.ErrInvalidArgument, 400, MsgInvalid, aegis.ErrInvalidArgument},
		{aegis.ErrConflict, 409, MsgConflict, aegis.ErrConflict},
		{errors.New("disk on fire at /var/lib/aegis"), 500, MsgInternal, nil},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			for _, err := range []error{tt.err, fmt.Errorf("invoke a/b@v1: %w", fmt.Errorf("deeper: %w", tt.err))} {
				f := Of(err)
				if f.Status != tt.status || f.Message != tt.msg || f.Kind != tt.kind {
					t.Errorf("Of(%v) = %+v, want %d %q %v", err, f, tt.status, tt.msg, tt.kind)
				}
			}
		})
	}
}

// A timeout is also a limit, and a trap is not a concurrency limit: the
// sandbox's own errors win over the root sentinels they match.
func TestSpecificBeforeRoot(t *testing.T) {
	if !errors.Is(sandbox.ErrTimeout, aegis.ErrLimitExceeded) {
		t.Fatal("the premise changed: ErrTimeout no longer matches ErrLimitExceeded")
	}
	if f := Of(errors.Join(sandbox.ErrTimeout, context.DeadlineExceeded)); f.Status != 504 {
		t.Errorf("a timeout with the context's error: %d, want 504", f.Status)
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	f := WriteErr(rec, fmt.Errorf("pool: %w", aegis.ErrLimitExceeded), "4bf92f3577b34da6a3ce929d0e0e4736")
	if f.Status != http.StatusTooManyRequests || rec.Code != f.Status {
		t.Fatalf("status %d (%+v)", rec.Code, f)
	}
	h := rec.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("Cache-Control") != "no-store" || h.Get("Retry-After") != "1" {
		t.Errorf("headers %v", h)
	}
	var b Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error != MsgConcurrency || b.RequestID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("body %s: %+v, %v", rec.Body, b, err)
	}
	if got, want := rec.Body.String(), string(Marshal(MsgConcurrency, "4bf92f3577b34da6a3ce929d0e0e4736")); got != want {
		t.Errorf("Write wrote %q, Marshal gives %q", got, want)
	}

	rec = httptest.NewRecorder()
	Write(rec, http.StatusNotFound, "not found <here>", "r")
	if rec.Header().Get("Retry-After") != "" {
		t.Error("Retry-After on a 404")
	}
	if got := rec.Body.String(); got != `{"error":"not found \u003chere\u003e","request_id":"r"}`+"\n" {
		t.Errorf("body %q", got)
	}
}
