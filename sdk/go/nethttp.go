package aegis

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Handle registers an ordinary net/http handler for HTTP invocations, so a
// function is written as any Go web handler is: an http.ServeMux with
// method and wildcard patterns ("GET /items/{id}", read with
// r.PathValue), middleware wrapping it, and httptest in unit tests. Call
// it from init, instead of HandleHTTP:
//
//	func init() {
//		mux := http.NewServeMux()
//		mux.HandleFunc("GET /items/{id}", getItem)
//		aegis.Handle(mux)
//	}
//
// The request carries what the platform verified and routed: its path
// parameters (r.PathValue, for the route's own "{name}" segments, also
// when h is not a mux), the caller (IdentityFrom(r.Context())), the
// request id (RequestIDFrom) and hop count (HopFrom). r.Host is empty and
// r.RemoteAddr too: the function never sees the network, only what the
// gateway let through. Platform calls (Get, Put, Publish, Fetch…) work
// inside the handler exactly as in a HandleHTTP one.
//
// What h writes is buffered and handed to the platform when it returns,
// so streaming (http.Flusher) and hijacking are not available. A header
// given several values is sent once, its values joined with ", " (RFC
// 9110's list form); so Set-Cookie carries one cookie per response.
//
// The shape costs a little over HandleHTTP: building the *http.Request
// and buffering the response (bench scenario 17 measures it against the
// echo round trip).
func Handle(h http.Handler) {
	HandleHTTP(func(req *Request) *Response { return serveHTTP(h, req) })
}

// serveHTTP runs h on req and returns what it wrote.
func serveHTTP(h http.Handler, req *Request) *Response {
	r := newHTTPRequest(req)
	w := &responseWriter{header: http.Header{}}
	h.ServeHTTP(w, r)
	return w.response()
}

// newHTTPRequest builds the *http.Request a handler sees from what the
// platform passed.
func newHTTPRequest(req *Request) *http.Request {
	u := &url.URL{Path: req.Path}
	if len(req.Query) > 0 {
		u.RawQuery = req.Query.Encode()
	}
	header := req.Header
	if header == nil {
		header = http.Header{}
	}
	ctx := context.WithValue(context.Background(), invocationKey{}, &invocation{
		identity:  req.Identity,
		requestID: req.RequestID,
		hop:       req.Hop,
	})
	r := (&http.Request{
		Method:        req.Method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          http.NoBody,
		ContentLength: int64(len(req.Body)),
		RequestURI:    u.RequestURI(),
	}).WithContext(ctx)
	if len(req.Body) > 0 {
		r.Body = readCloser{bytes.NewReader(req.Body)}
		body := req.Body
		r.GetBody = func() (io.ReadCloser, error) { return readCloser{bytes.NewReader(body)}, nil }
	}
	for name, v := range req.Params {
		r.SetPathValue(name, v)
	}
	return r
}

// invocationKey is the context key of what the platform says about the
// invocation a request belongs to.
type invocationKey struct{}

type invocation struct {
	identity  *Identity
	requestID string
	hop       int
}

func invocationOf(ctx context.Context) *invocation {
	if ctx == nil {
		return nil
	}
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

// IdentityFrom returns the caller the platform verified for the request
// whose context ctx is (r.Context() in a Handle handler); nil on a public
// route. The credential itself is never passed to the function.
func IdentityFrom(ctx context.Context) *Identity {
	if inv := invocationOf(ctx); inv != nil {
		return inv.identity
	}
	return nil
}

// RequestIDFrom returns the request's correlation id (r.Context() in a
// Handle handler); include it in logs and errors.
func RequestIDFrom(ctx context.Context) string {
	if inv := invocationOf(ctx); inv != nil {
		return inv.requestID
	}
	return ""
}

// HopFrom returns the request's hop count (see Request.Hop).
func HopFrom(ctx context.Context) int {
	if inv := invocationOf(ctx); inv != nil {
		return inv.hop
	}
	return 0
}

// WithIdentity returns a context carrying id as the verified caller, and
// requestID as the request's id: for unit tests of a Handle handler, which
// run it with httptest the way the platform would call it:
//
//	r := httptest.NewRequest("GET", "/items/7", nil)
//	r = r.WithContext(aegis.WithIdentity(r.Context(), &aegis.Identity{Scheme: "api-key", Subject: "ci"}, "req-1"))
func WithIdentity(ctx context.Context, id *Identity, requestID string) context.Context {
	inv := &invocation{identity: id, requestID: requestID}
	if old := invocationOf(ctx); old != nil {
		inv.hop = old.hop
	}
	return context.WithValue(ctx, invocationKey{}, inv)
}

// responseWriter buffers what a handler writes.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status != 0 {
		return // as net/http: the first status wins
	}
	if status < 100 || status > 599 {
		// net/http panics here; a function answers 500 instead, with
		// the reason in its log.
		Log("error", "WriteHeader: invalid status "+strconv.Itoa(status))
		status = http.StatusInternalServerError
	}
	w.status = status
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(b)
}

// response turns what was written into the platform's response. As
// net/http does, a body without a Content-Type gets one sniffed from its
// first bytes.
func (w *responseWriter) response() *Response {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if _, ok := w.header["Content-Type"]; !ok && w.body.Len() > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
	}
	header := make(map[string]string, len(w.header))
	for name, vs := range w.header {
		if len(vs) == 0 {
			continue
		}
		header[name] = strings.Join(vs, ", ")
	}
	return &Response{Status: status, Header: header, Body: w.body.Bytes()}
}

// readCloser is a body with nothing to close.
type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
