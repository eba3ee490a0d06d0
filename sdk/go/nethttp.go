package aegis

import (
	"bytes"
	"context"
	"net/http"
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
// The shape costs more than HandleHTTP inside the guest, mostly in
// allocation: building the *http.Request, the mux's match and buffering
// the response, about 8 µs a warm invocation (bench scenario 17).
func Handle(h http.Handler) {
	HandleHTTP(func(req *Request) *Response { return serveHTTP(h, req) })
}

// serveHTTP runs h on req and returns what it wrote. The writer is one
// per instance, reused: an instance serves one invocation at a time, and
// the platform copies the response before the next one begins.
func serveHTTP(h http.Handler, req *Request) *Response {
	r := newHTTPRequest(req)
	w := &sharedWriter
	w.reset()
	h.ServeHTTP(w, r)
	return w.response()
}

var sharedWriter = responseWriter{header: http.Header{}}

// newHTTPRequest builds the *http.Request a handler sees from what the
// platform passed.
func newHTTPRequest(req *Request) *http.Request {
	header := req.Header
	if header == nil {
		header = http.Header{}
	}
	ctx := context.WithValue(context.Background(), invocationKey{}, &invocation{
		identity:  req.Identity,
		requestID: req.RequestID,
		hop:       req.Hop,
	})
	// NewRequestWithContext rather than a literal and WithContext, which
	// copies the whole request: allocation is what a guest's time goes to.
	r, err := http.NewRequestWithContext(ctx, req.Method, "/", nil)
	if err != nil { // a method net/http refuses; the gateway routes none
		r, _ = http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		r.Method = req.Method
	}
	r.URL.Path = req.Path
	if len(req.Query) > 0 {
		r.URL.RawQuery = req.Query.Encode()
	}
	r.RequestURI = r.URL.RequestURI()
	r.Host = ""
	r.Header = header
	if len(req.Body) > 0 {
		b := &bodyReader{}
		b.Reset(req.Body)
		r.Body, r.ContentLength = b, int64(len(req.Body))
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

// reset readies w for the next invocation.
func (w *responseWriter) reset() {
	clear(w.header)
	w.status = 0
	w.body.Reset()
	if w.body.Cap() > maxKeptBody {
		w.body = bytes.Buffer{} // do not hold a large response for the instance's life
	}
}

// maxKeptBody is the largest response buffer kept between invocations.
const maxKeptBody = 64 << 10

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
		// One value with the field lines separated by LF: the platform
		// sends each as its own header line, as net/http would (two
		// Set-Cookie lines cannot be joined with commas).
		header[name] = strings.Join(vs, "\n")
	}
	return &Response{Status: status, Header: header, Body: w.body.Bytes()}
}

// bodyReader is a request body with nothing to close, in one allocation.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }
