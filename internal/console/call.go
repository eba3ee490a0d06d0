package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/aegis-platform/aegis/internal/rbac"
)

// otpHeader is the admin API's step-up header (admin.OTPHeader; not
// imported, so the console depends on the API only through Admin).
const otpHeader = "Aegis-OTP"

// apiError is an admin call's refusal: its status and the message the API
// wrote for the caller, shown on the page as it is.
type apiError struct {
	Status    int
	Msg       string
	RequestID string
	// StepUp: a current authenticator code would turn it into a success.
	StepUp bool
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Msg) }

// recorder is the response of an in-process admin call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// call makes an admin call as the request's principal, from the browser's
// address (for the audit record and the security log), and decodes the
// answer into out (when not nil). otp is the step-up code a form sent.
func (c *Console) call(ctx context.Context, from *http.Request, rq *request, method, path string, in, out any, otp string) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("admin call %s %s: %w", method, path, err)
	}
	r.RemoteAddr = from.RemoteAddr
	r.Host = from.Host
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "aegis-console")
	if otp != "" {
		r.Header.Set(otpHeader, otp)
	}
	rec := &recorder{header: http.Header{}}
	c.cfg.Admin.ServeAs(rec, r, rq.principal())
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 {
		var e struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		if e.Error == "" {
			e.Error = http.StatusText(rec.status)
		}
		return &apiError{Status: rec.status, Msg: e.Error, RequestID: e.RequestID, StepUp: rec.header.Get("Aegis-Step-Up") == "required"}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = rec.body.Bytes()
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

func (rq *request) principal() *rbac.Principal {
	if rq == nil {
		return nil
	}
	return rq.who
}
