package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

// Health reports whether the admin API answers. It needs no token.
func (c *Client) Health(ctx context.Context) error {
	var out adminapi.Health
	if err := c.call(ctx, http.MethodGet, "/v1/health", nil, &out, http.StatusOK); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("unexpected health status %q", out.Status)
	}
	return nil
}

// HasModule reports whether the server already stores the module with this
// hex SHA-256, so a deploy uploads only what changed.
func (c *Client) HasModule(ctx context.Context, sha256 string) (bool, error) {
	req, err := c.newRequest(ctx, http.MethodHead, "/v1/modules/"+url.PathEscape(sha256), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	// A HEAD answer has no body, so only the status and header are known.
	return false, &APIError{
		Status:    resp.StatusCode,
		Message:   "check module: " + http.StatusText(resp.StatusCode),
		RequestID: resp.Header.Get("X-Request-Id"),
	}
}

// UploadModule stores a WebAssembly module under its hex SHA-256. The server
// refuses bytes that do not hash to sha256.
func (c *Client) UploadModule(ctx context.Context, sha256 string, wasm []byte) error {
	req, err := c.newRequest(ctx, http.MethodPut, "/v1/modules/"+url.PathEscape(sha256), bytes.NewReader(wasm))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/wasm")
	resp, err := c.do(req, http.StatusCreated, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// Deploy activates a new version of app. When the manifest is invalid or a
// module does not compile, the error says why and the active version keeps
// serving.
func (c *Client) Deploy(ctx context.Context, app string, req DeployRequest) (*DeployResult, error) {
	var out DeployResult
	if err := c.call(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/deploy", req, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rollback makes the previous version of app active again and returns it.
// It fails with ErrConflict when there is none.
func (c *Client) Rollback(ctx context.Context, app string) (*DeployResult, error) {
	return c.RollbackTo(ctx, app, 0)
}

// RollbackTo makes version (3 for "v3") of app active again, any version
// Versions lists; 0 is the previous one, as Rollback. It fails with
// ErrNotFound when the app has no such version. Going to the active
// version changes nothing: the result has Unchanged set.
func (c *Client) RollbackTo(ctx context.Context, app string, version int) (*DeployResult, error) {
	var body any // no body at all for the previous version, as servers before RollbackRequest expect
	if version != 0 {
		body = RollbackRequest{To: version}
	}
	var out DeployResult
	if err := c.call(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/rollback", body, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// Versions lists every recorded version of app, oldest first, the active
// one marked.
func (c *Client) Versions(ctx context.Context, app string) ([]Version, error) {
	var out []Version
	return out, c.call(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/versions", nil, &out, http.StatusOK)
}

// Apps lists deployed apps.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out []App
	return out, c.call(ctx, http.MethodGet, "/v1/apps", nil, &out, http.StatusOK)
}

// Functions lists the functions of every app's active version.
func (c *Client) Functions(ctx context.Context) ([]Function, error) {
	var out []Function
	return out, c.call(ctx, http.MethodGet, "/v1/functions", nil, &out, http.StatusOK)
}

// Routes lists the HTTP routes the gateway serves.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out []Route
	return out, c.call(ctx, http.MethodGet, "/v1/routes", nil, &out, http.StatusOK)
}

// CreateKey creates an API key for the gateway. The answer is the only time
// the key is shown. It fails with ErrConflict when the name is taken.
func (c *Client) CreateKey(ctx context.Context, name string) (*NewKey, error) {
	return c.CreateKeyWithOptions(ctx, name, KeyOptions{})
}

// CreateKeyWithOptions is CreateKey for a key limited to some apps or
// functions, with an expiry or with labels.
func (c *Client) CreateKeyWithOptions(ctx context.Context, name string, opts KeyOptions) (*NewKey, error) {
	var out NewKey
	in := adminapi.CreateKeyRequest{Name: name, Scopes: opts.Scopes, Labels: opts.Labels,
		Rate: opts.Rate.String(), Budget: opts.Budget.String()}
	if opts.ExpiresIn > 0 {
		in.ExpiresIn = opts.ExpiresIn.String()
	}
	if opts.Burst != 0 {
		in.Burst = strconv.Itoa(opts.Burst)
	}
	if err := c.call(ctx, http.MethodPost, "/v1/keys", in, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKey gives the named key a new secret, returned this once. The old
// secret keeps working for overlap, then is refused. It fails with
// ErrNotFound when there is no such key and ErrConflict when it is revoked.
func (c *Client) RotateKey(ctx context.Context, name string, overlap time.Duration) (*NewKey, error) {
	var out NewKey
	in := adminapi.RotateKeyRequest{Overlap: overlap.String()}
	if err := c.call(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(name)+"/rotate", in, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// Keys lists API keys, revoked ones included, without their secrets.
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var out []Key
	return out, c.call(ctx, http.MethodGet, "/v1/keys", nil, &out, http.StatusOK)
}

// RevokeKey revokes the named API key. It fails with ErrNotFound when there
// is no such key.
func (c *Client) RevokeKey(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(name), nil, nil, http.StatusNoContent, http.StatusOK)
}

// Invoke calls a function directly with body as the raw request body.
//
// Whatever status the answer has, it is returned as an *InvokeResult with a
// nil error: a function's own 404 or 500 is an answer, not a failure of the
// call, and the server's refusals (401, unknown function) carry the usual
// {"error","request_id"} body in the result. The error is for failures to
// get an answer at all.
func (c *Client) Invoke(ctx context.Context, app, fn string, body []byte) (*InvokeResult, error) {
	path := "/v1/apps/" + url.PathEscape(app) + "/functions/" + url.PathEscape(fn) + "/invoke"
	req, err := c.newRequest(ctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if len(b) > MaxResponseSize {
		return nil, fmt.Errorf("read answer: larger than %d bytes", MaxResponseSize)
	}
	return &InvokeResult{
		Status:        resp.StatusCode,
		Header:        resp.Header,
		Body:          b,
		RequestID:     resp.Header.Get("X-Request-Id"),
		FunctionError: resp.Header.Get(adminapi.HeaderFunctionError),
	}, nil
}

// maxLogLine bounds one NDJSON line; a longer one ends the stream with an
// error rather than growing the buffer without limit.
const maxLogLine = 1 << 20

// Logs streams log records matching q to fn, oldest first. It returns when
// the server ends the stream (nil), when fn returns an error (that error),
// or when ctx ends (ctx.Err()); with q.Follow the server keeps the stream
// open, so only fn or ctx end it.
func (c *Client) Logs(ctx context.Context, q LogQuery, fn func(LogRecord) error) error {
	if fn == nil {
		return errors.New("nil log callback")
	}
	params := []string{"app", q.App, "function", q.Function, "trace", q.Trace}
	if !q.Since.IsZero() {
		params = append(params, "since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Follow {
		params = append(params, "follow", "true")
	}
	if q.Limit > 0 {
		params = append(params, "limit", strconv.Itoa(q.Limit))
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/logs"+query(params...), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	return readLogStream(ctx, resp.Body, fn)
}

// readLogStream decodes NDJSON records from r and hands them to fn.
func readLogStream(ctx context.Context, r io.Reader, fn func(LogRecord) error) error {
	return readNDJSON(ctx, r, "log record", "log stream", 64<<10, fn)
}

// readNDJSON decodes one JSON value of type T per line of r (at most
// maxLogLine bytes a line; blank lines skipped) and hands each to fn, until
// r ends, fn fails or ctx is done. what and stream name the record and the
// stream in errors.
func readNDJSON[T any](ctx context.Context, r io.Reader, what, stream string, buf int, fn func(T) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, buf), maxLogLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("decode %s: %w", what, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	return nil
}

// DLQ lists dead letters, of one app when app is not empty.
func (c *Client) DLQ(ctx context.Context, app string) ([]DeadLetter, error) {
	var out []DeadLetter
	return out, c.call(ctx, http.MethodGet, "/v1/dlq"+query("app", app), nil, &out, http.StatusOK)
}

// ReplayDLQ publishes a dead letter again on its topic, with its original
// request id.
func (c *Client) ReplayDLQ(ctx context.Context, id uint64) error {
	return c.call(ctx, http.MethodPost, "/v1/dlq/"+strconv.FormatUint(id, 10)+"/replay", nil, nil, http.StatusAccepted, http.StatusOK)
}
