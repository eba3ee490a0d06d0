// Package client is the Go client of the Aegis admin API (docs/admin-api.md):
// the API the aegis CLI and any automation use to deploy apps, manage API
// keys, invoke functions and read logs. It holds no state beyond the base URL
// and the admin token (and, for step-up, a TOTP code), and never logs or
// prints either. The bodies it sends and decodes are declared in package
// adminapi, which the server uses too; App, Key and the others here are
// those types under their names in this package.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxResponseSize caps how much of any answer the client reads: a module, an
// invocation result or a listing. It matches the server's module size limit,
// so a misbehaving or hostile endpoint cannot make the client buffer without
// bound.
const MaxResponseSize = 64 << 20

// OTPHeader carries a TOTP code for a call that needs step-up.
const OTPHeader = "Aegis-OTP"

// Client calls one Aegis admin API. It is safe for concurrent use.
type Client struct {
	baseURL string
	token   string
	otp     string
	hc      *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for every call, for example to
// add TLS settings or a timeout. The default has no overall timeout because
// Logs with Follow streams for as long as its context lives; bound calls with
// their context instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithOTP sends code, a current code of the server's enrolled
// authenticator, in the Aegis-OTP header of every call, for the dangerous
// changes that need one (step-up). The server uses a code up the first
// time a call needs it, so a client is good for one such change per code.
func WithOTP(code string) Option {
	return func(c *Client) { c.otp = code }
}

// New returns a client for the admin API at baseURL (for example
// http://127.0.0.1:8081) that authenticates with the admin token.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{
		baseURL: strings.TrimRight(baseURL, "/"),
		token:   token,
		hc:      &http.Client{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// newRequest builds an authenticated request for path, which the caller has
// already escaped.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.otp != "" {
		req.Header.Set(OTPHeader, c.otp)
	}
	return req, nil
}

// do sends a request and returns the response when its status is one of
// want; any other status becomes an *APIError and the body is closed.
func (c *Client) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// call sends in (when not nil) as JSON and decodes the answer into out (when
// not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any, want ...int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req, want...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseSize))
		return nil
	}
	// Unknown fields are accepted on purpose: a newer server may add fields
	// and an older client must keep working.
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxResponseSize)).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s answer: %w", method, path, err)
	}
	return nil
}

// query builds "?k=v&…" from the non-empty values, or "" when all are empty.
func query(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
