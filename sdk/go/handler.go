package aegis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
)

// Request is an HTTP request routed to the function.
type Request struct {
	Method    string
	Path      string
	Params    map[string]string // path parameters: "/users/{id}" gives Params["id"]
	Query     url.Values
	Header    http.Header
	Body      []byte
	RequestID string // the correlation id; include it in logs and errors
	// Identity is the caller as the platform verified it; nil on a public
	// route. The credential itself (API key, token, signature) is never
	// passed to the function. A call from another function of the app
	// (Invoke) has scheme "function" and subject "app/function".
	Identity *Identity
	// Hop counts the function calls (Invoke) and events in the chain that
	// led here: 0 for a request from outside, 1 for a call made while
	// handling one, and so on.
	Hop int
}

// Identity is a verified caller.
type Identity struct {
	Scheme  string         `json:"scheme"`            // "api-key", "jwt", "hmac" or "function"
	Subject string         `json:"subject,omitempty"` // the key's name, the token's "sub", the webhook secret's name, or the calling "app/function"
	Issuer  string         `json:"issuer,omitempty"`  // jwt: the token's "iss"
	Claims  map[string]any `json:"claims,omitempty"`  // jwt: every claim of the verified token
}

// Response is what an HTTP handler answers. Status 0 means 200.
type Response struct {
	Status int
	// Header holds one value a name. A header sent several times (two
	// Set-Cookie lines) is one value with its lines separated by "\n";
	// the platform sends each line as its own header.
	Header map[string]string
	Body   []byte
}

// Event is a delivery to an event, object or schedule trigger.
type Event struct {
	Kind      string // "event", "object" or "schedule" ("http" if only an event handler is registered)
	Topic     string // event: the topic
	Data      []byte // event: the payload; object: empty
	Key       string // object: the object key
	Operation string // object: "put" or "delete"
	Attempt   int    // event: 1 for the first delivery
	Hop       int    // event, object: events in the chain so far, 1 for one published outside an event handler
	RequestID string
}

var (
	httpHandler  func(*Request) *Response
	eventHandler func(*Event) error
)

// HandleHTTP registers the handler for HTTP invocations. Call it from init.
func HandleHTTP(h func(*Request) *Response) { httpHandler = h }

// HandleEvent registers the handler for event, object and schedule
// invocations. Returning an error fails the invocation, and the platform
// retries the delivery. Call it from init.
func HandleEvent(h func(*Event) error) { eventHandler = h }

// JSON answers with v encoded as JSON.
func JSON(status int, v any) *Response {
	b, err := json.Marshal(v)
	if err != nil {
		return Error(500, "encode response: "+err.Error())
	}
	return &Response{Status: status, Header: map[string]string{"Content-Type": "application/json"}, Body: b}
}

// Text answers with plain text.
func Text(status int, s string) *Response {
	return &Response{Status: status, Header: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, Body: []byte(s)}
}

// Error answers {"error": msg, "request_id": id}, the shape the platform
// uses for its own errors, so a client can quote the id that joins its
// answer to the log lines of every hop.
func Error(status int, msg string) *Response {
	// The body is what JSON would write for the map {"error": msg,
	// "request_id": id}, without the map and the reflection.
	return &Response{Status: status, Header: map[string]string{"Content-Type": "application/json"},
		Body: errorBody(msg, currentRequestID)}
}

// currentRequestID is the id of the invocation being served. A package
// variable is enough: an instance serves one invocation at a time.
var currentRequestID string

// DecodeJSON decodes the body into v strictly: unknown fields and data
// after the JSON value are errors, so a typo in a client is caught rather
// than silently ignored.
func (r *Request) DecodeJSON(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("decode request body: unexpected data after the JSON value")
	}
	return nil
}

// requestMeta mirrors the host's request meta document (docs/abi.md).
type requestMeta struct {
	Kind      string              `json:"kind"`
	RequestID string              `json:"request_id"`
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	Params    map[string]string   `json:"params"`
	Query     map[string][]string `json:"query"`
	Headers   map[string][]string `json:"headers"`
	Topic     string              `json:"topic"`
	Key       string              `json:"key"`
	Operation string              `json:"operation"`
	Attempt   int                 `json:"attempt"`
	Hop       int                 `json:"hop"`
	Identity  *Identity           `json:"identity"`
}

// handle serves one invocation: the body of the exported aegis_handle.
// It returns 0 on success and 1 on failure; a panic is recovered, logged
// with its stack and reported as failure, so it never takes the module
// down silently.
func handle() (code int32) {
	defer func() {
		if r := recover(); r != nil {
			Log("error", fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
			code = 1
		}
	}()
	metaJSON, body, err := readRequest()
	if err != nil {
		Log("error", err.Error())
		return 1
	}
	meta, req, err := decodeRequest(metaJSON)
	if err != nil {
		Log("error", "decode request meta: "+err.Error())
		return 1
	}
	return serve(&meta, body, req)
}

// dispatch calls the handler that fits the invocation's kind, or the only
// one registered.
func dispatch(meta *requestMeta, body []byte) int32 { return serve(meta, body, nil) }

// serve is dispatch with the Request to fill in for an HTTP handler, if
// decoding allocated one already; nil allocates it here.
func serve(meta *requestMeta, body []byte, req *Request) int32 {
	currentRequestID = meta.RequestID
	defer func() { currentRequestID = "" }()
	useHTTP := httpHandler != nil && (meta.Kind == "http" || eventHandler == nil)
	switch {
	case useHTTP:
		if req == nil {
			req = new(Request)
		}
		*req = Request{
			Method:    meta.Method,
			Path:      meta.Path,
			Params:    meta.Params,
			Query:     url.Values(meta.Query),
			Header:    http.Header(meta.Headers),
			Body:      body,
			RequestID: meta.RequestID,
			Identity:  meta.Identity,
			Hop:       meta.Hop,
		}
		return respond(httpHandler(req))
	case eventHandler != nil:
		err := eventHandler(&Event{
			Kind:      meta.Kind,
			Topic:     meta.Topic,
			Data:      body,
			Key:       meta.Key,
			Operation: meta.Operation,
			Attempt:   meta.Attempt,
			Hop:       meta.Hop,
			RequestID: meta.RequestID,
		})
		if err != nil {
			Log("error", "event handler failed: "+err.Error())
			return 1
		}
		return 0
	default:
		Log("error", "no handler registered: call aegis.HandleHTTP or aegis.HandleEvent in init")
		return 1
	}
}

// respond hands resp to the host. A nil response leaves the default: 200
// with an empty body.
func respond(resp *Response) int32 {
	if resp == nil {
		return 0
	}
	responseMetaBuf = appendResponseMeta(responseMetaBuf[:0], resp.Status, resp.Header)
	err := check(hostResponseSet(responseMetaBuf, resp.Body))
	if cap(responseMetaBuf) > maxResponseMeta {
		// The host refuses such a meta anyway: do not keep its buffer
		// for the life of the instance.
		responseMetaBuf = nil
	}
	if err != nil {
		Log("error", "set response: "+err.Error())
		return 1
	}
	return 0
}

// maxResponseMeta is the largest response meta the host accepts
// (docs/abi.md).
const maxResponseMeta = 64 << 10

// readRequest reads the request meta and body into one new buffer: one
// allocation instead of two. It must be new for every invocation, because
// the strings of the decoded meta share its memory and the handler may
// keep them, and the body, after it returns. The body is a
// capacity-limited window, so appending to it never touches the meta.
func readRequest() (meta, body []byte, err error) {
	m := hostRequestMetaLen()
	if m < 0 {
		return nil, nil, fmt.Errorf("read request meta: %w", resultError(m))
	}
	n := hostRequestBodyLen()
	if n < 0 {
		return nil, nil, fmt.Errorf("read request body: %w", resultError(n))
	}
	buf := make([]byte, int(m)+int(n))
	meta, body = buf[:m:m], buf[m:]
	if err := readFull(meta, hostRequestMetaRead); err != nil {
		return nil, nil, fmt.Errorf("read request meta: %w", err)
	}
	if err := readFull(body, hostRequestBodyRead); err != nil {
		return nil, nil, fmt.Errorf("read request body: %w", err)
	}
	return meta, body, nil
}

// readFull fills b with one read call.
func readFull(b []byte, read func([]byte) int32) error {
	if len(b) == 0 {
		return nil
	}
	if got := read(b); got != int32(len(b)) {
		if got < 0 {
			return resultError(got)
		}
		return fmt.Errorf("short read: %d of %d bytes", got, len(b))
	}
	return nil
}
