//go:build !aegis_wazero

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aegis-platform/aegis"
	"github.com/samyfodil/wazy/component"
	"github.com/samyfodil/wazy/component/wit"
)

// wasi:http/types and wasi:http/outgoing-handler (WASI 0.2). The incoming
// request is the invocation's; the response a guest sets becomes the
// invocation's Response, its body held to max_response as it is written;
// an outgoing request goes through Host.Fetch, so the egress grants, the
// per-invocation caps and the egress filter apply exactly as they do to
// the fetch host call of core modules.

// httpMethods are the payload-less cases of wasi:http/types method, in
// declaration order; "other" carries any other token.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// maxFieldLines bounds the header lines of one fields resource.
const maxFieldLines = 1000

type httpFields struct {
	names     []string
	values    [][]byte
	immutable bool
}

func (f *httpFields) clone() *httpFields {
	return &httpFields{names: append([]string(nil), f.names...), values: append([][]byte(nil), f.values...)}
}

func (f *httpFields) remove(name string) {
	names, values := f.names[:0], f.values[:0]
	for i, n := range f.names {
		if !strings.EqualFold(n, name) {
			names = append(names, n)
			values = append(values, f.values[i])
		}
	}
	f.names, f.values = names, values
}

// validField says whether name and value may be sent: a token name and a
// value with no CR, LF or NUL, the same rule checkResponseHeaders holds
// core modules to.
func validField(name string, value []byte) bool {
	if name == "" || len(name) > maxNameLen || len(value) > maxLogLine {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return !bytes.ContainsAny(value, "\r\n\x00")
}

type incomingRequest struct {
	method, pathQuery, authority string
	headers                      *httpFields
	body                         []byte
	consumed                     bool
}

type outgoingBody struct {
	buf      bytes.Buffer
	limit    int64
	overflow func() error
	written  bool // write was called: the stream was handed out
	finished bool
}

func (b *outgoingBody) stream() *outputStream {
	return &outputStream{write: func(p []byte) error {
		if b.finished {
			return errors.New("body already finished")
		}
		if int64(b.buf.Len()+len(p)) > b.limit {
			return b.overflow()
		}
		b.buf.Write(p)
		return nil
	}}
}

type outgoingResponse struct {
	status    uint16
	headers   *httpFields
	body      *outgoingBody
	bodyTaken bool
}

type responseOutparam struct {
	set  bool
	resp *outgoingResponse
	err  bool
}

type incomingBody struct {
	data        []byte
	streamTaken bool
}

type futureTrailers struct{}

type outgoingRequest struct {
	method             string
	scheme, authority  string
	pathQuery          string
	headers            *httpFields
	body               *outgoingBody
	bodyTaken          bool
	schemeSet, pathSet bool
}

type requestOptions struct{ connect, firstByte, betweenBytes component.Value }

type incomingResponse struct {
	status   uint16
	headers  *httpFields
	body     []byte
	consumed bool
}

// futureResponse is an outgoing request in flight. The fetch runs when the
// guest first asks for the answer, so a body written after handle() was
// called is sent with it.
type futureResponse struct {
	req      *outgoingRequest
	done     bool
	taken    bool
	resp     *incomingResponse
	errorTag string // the error-code case when the fetch failed
}

// --- fields -------------------------------------------------------------------

func fieldsNew(h *componentHost, _ context.Context, _ *wit.Signature, _ []component.Value) ([]component.Value, error) {
	return h.fresh(&httpFields{})
}

func (h *componentHost) headerError(sig *wit.Signature, name string) ([]component.Value, error) {
	v, err := variant(sig, "header-error", name, nil)
	if err != nil {
		return nil, err
	}
	return fail(v), nil
}

func fieldsFromList(h *componentHost, _ context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	entries, isList := args[0].([]component.Value)
	if !isList {
		return nil, fmt.Errorf("fields.from-list: want a list, got %T", args[0])
	}
	if len(entries) > maxFieldLines {
		return h.headerError(sig, "forbidden")
	}
	f := &httpFields{}
	for _, e := range entries {
		pair, isPair := e.([]component.Value)
		if !isPair || len(pair) != 2 {
			return nil, errors.New("fields.from-list: want name and value pairs")
		}
		name, err := argString(pair[0], "fields.from-list")
		if err != nil {
			return nil, err
		}
		value, err := argBytes(pair[1], "fields.from-list")
		if err != nil {
			return nil, err
		}
		if !validField(name, value) {
			return h.headerError(sig, "invalid-syntax")
		}
		f.names = append(f.names, name)
		f.values = append(f.values, value)
	}
	handle, err := h.own(tagFields, f)
	if err != nil {
		return nil, err
	}
	return ok(handle), nil
}

var fieldsGet = method("fields.get", func(h *componentHost, _ *wit.Signature, f *httpFields, args []component.Value) ([]component.Value, error) {
	name, err := argString(args[1], "fields.get")
	if err != nil {
		return nil, err
	}
	out := []component.Value{}
	for i, n := range f.names {
		if strings.EqualFold(n, name) {
			out = append(out, f.values[i])
		}
	}
	return one(out), nil
})

var fieldsHas = method("fields.has", func(h *componentHost, _ *wit.Signature, f *httpFields, args []component.Value) ([]component.Value, error) {
	name, err := argString(args[1], "fields.has")
	if err != nil {
		return nil, err
	}
	for _, n := range f.names {
		if strings.EqualFold(n, name) {
			return one(true), nil
		}
	}
	return one(false), nil
})

// fieldsChange is set, delete and append: what each does to f once the
// name and values have been checked.
func fieldsChange(what string, change func(f *httpFields, name string, values [][]byte)) hostFn {
	return func(h *componentHost, _ context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
		f, err := repOf[*httpFields](h, args[0], "fields."+what)
		if err != nil {
			return nil, err
		}
		name, err := argString(args[1], "fields."+what)
		if err != nil {
			return nil, err
		}
		var values [][]byte
		if len(args) > 2 {
			switch v := args[2].(type) {
			case []component.Value: // set: list<field-value>
				for _, e := range v {
					b, err := argBytes(e, "fields."+what)
					if err != nil {
						return nil, err
					}
					values = append(values, b)
				}
			default: // append: one field-value
				b, err := argBytes(v, "fields."+what)
				if err != nil {
					return nil, err
				}
				values = append(values, b)
			}
		}
		if f.immutable {
			return h.headerError(sig, "immutable")
		}
		for _, v := range values {
			if !validField(name, v) {
				return h.headerError(sig, "invalid-syntax")
			}
		}
		if !validField(name, nil) {
			return h.headerError(sig, "invalid-syntax")
		}
		if len(f.names)+len(values) > maxFieldLines {
			return h.headerError(sig, "forbidden")
		}
		change(f, name, values)
		return ok(nil), nil
	}
}

var (
	fieldsSet = fieldsChange("set", func(f *httpFields, name string, values [][]byte) {
		f.remove(name)
		for _, v := range values {
			f.names, f.values = append(f.names, name), append(f.values, v)
		}
	})
	fieldsDelete = fieldsChange("delete", func(f *httpFields, name string, _ [][]byte) { f.remove(name) })
	fieldsAppend = fieldsChange("append", func(f *httpFields, name string, values [][]byte) {
		for _, v := range values {
			f.names, f.values = append(f.names, name), append(f.values, v)
		}
	})
)

var fieldsEntries = method("fields.entries", func(h *componentHost, _ *wit.Signature, f *httpFields, args []component.Value) ([]component.Value, error) {
	out := make([]component.Value, len(f.names))
	for i, n := range f.names {
		out[i] = []component.Value{n, f.values[i]}
	}
	return one(out), nil
})

var fieldsClone = method("fields.clone", func(h *componentHost, _ *wit.Signature, f *httpFields, args []component.Value) ([]component.Value, error) {
	return h.fresh(f.clone())
})

// immutableHeaders hands out a message's headers: a copy the guest reads
// and cannot change, as wasi:http says of every headers() accessor.
func (h *componentHost) immutableHeaders(f *httpFields) ([]component.Value, error) {
	c := f.clone()
	c.immutable = true
	return h.fresh(c)
}

// --- methods and schemes ---------------------------------------------------------

func methodValue(m string) component.Value {
	for i, name := range httpMethods {
		if m == name {
			return component.VariantValue{Disc: uint32(i)}
		}
	}
	return component.VariantValue{Disc: uint32(len(httpMethods)), Payload: m}
}

func methodOf(v component.Value) (string, error) {
	vv, isVariant := v.(component.VariantValue)
	if !isVariant {
		return "", fmt.Errorf("method: want a variant, got %T", v)
	}
	if int(vv.Disc) < len(httpMethods) {
		return httpMethods[vv.Disc], nil
	}
	s, isString := vv.Payload.(string)
	if !isString || s == "" || !validField(s, nil) {
		return "", errors.New("method: not a token")
	}
	return s, nil
}

func schemeValue(s string) component.Value {
	switch s {
	case "http":
		return component.VariantValue{Disc: 0}
	case "https":
		return component.VariantValue{Disc: 1}
	}
	return component.VariantValue{Disc: 2, Payload: s}
}

func schemeOf(v component.Value) (string, bool) {
	vv, isVariant := v.(component.VariantValue)
	if !isVariant {
		return "", false
	}
	switch vv.Disc {
	case 0:
		return "http", true
	case 1:
		return "https", true
	}
	s, isString := vv.Payload.(string)
	return strings.ToLower(s), isString
}

// --- incoming request --------------------------------------------------------------

var incomingRequestMethod = method("incoming-request.method", func(h *componentHost, _ *wit.Signature, r *incomingRequest, args []component.Value) ([]component.Value, error) {
	return one(methodValue(r.method)), nil
})

var incomingRequestPath = method("incoming-request.path-with-query", func(h *componentHost, _ *wit.Signature, r *incomingRequest, args []component.Value) ([]component.Value, error) {
	return one(r.pathQuery), nil
})

var incomingRequestScheme = method("incoming-request.scheme", func(h *componentHost, _ *wit.Signature, _ *incomingRequest, args []component.Value) ([]component.Value, error) {
	// The gateway terminated TLS or not; the function is told http, as a
	// server behind a proxy is.
	return one(schemeValue("http")), nil
})

var incomingRequestAuthority = method("incoming-request.authority", func(h *componentHost, _ *wit.Signature, r *incomingRequest, args []component.Value) ([]component.Value, error) {
	return one(r.authority), nil
})

var incomingRequestHeaders = method("incoming-request.headers", func(h *componentHost, _ *wit.Signature, r *incomingRequest, args []component.Value) ([]component.Value, error) {
	return h.immutableHeaders(r.headers)
})

var incomingRequestConsume = method("incoming-request.consume", func(h *componentHost, _ *wit.Signature, r *incomingRequest, args []component.Value) ([]component.Value, error) {
	return h.once(&r.consumed, tagIncomingBody, &incomingBody{data: r.body})
})

// --- bodies ---------------------------------------------------------------------------

var incomingBodyStream = method("incoming-body.stream", func(h *componentHost, _ *wit.Signature, b *incomingBody, args []component.Value) ([]component.Value, error) {
	return h.once(&b.streamTaken, tagInputStream, &inputStream{data: b.data})
})

var incomingBodyFinish = method("incoming-body.finish", func(h *componentHost, _ *wit.Signature, _ *incomingBody, args []component.Value) ([]component.Value, error) {
	return h.fresh(&futureTrailers{})
})

var futureTrailersSubscribe = method("future-trailers.subscribe", func(h *componentHost, _ *wit.Signature, _ *futureTrailers, args []component.Value) ([]component.Value, error) {
	return h.readyPollable()
})

var futureTrailersGet = method("future-trailers.get", func(h *componentHost, _ *wit.Signature, _ *futureTrailers, args []component.Value) ([]component.Value, error) {
	// some(ok(ok(none))): ready, and there are no trailers.
	return one(component.ResultValue{Payload: component.ResultValue{Payload: nil}}), nil
})

var outgoingBodyWrite = method("outgoing-body.write", func(h *componentHost, _ *wit.Signature, b *outgoingBody, args []component.Value) ([]component.Value, error) {
	return h.once(&b.written, tagOutputStream, b.stream())
})

var outgoingBodyFinish = method("outgoing-body.finish", func(h *componentHost, _ *wit.Signature, b *outgoingBody, args []component.Value) ([]component.Value, error) {
	b.finished = true
	// Trailers, if any, are not sent: the gateway answers with a body of
	// known length. Taking the handle keeps the table clean.
	if args[1] != nil {
		if _, err := taken[*httpFields](h, tagFields, args[1], "outgoing-body.finish"); err != nil {
			return nil, err
		}
	}
	return ok(nil), nil
})

// --- outgoing response and the outparam ---------------------------------------------------

var outgoingResponseNew = method("outgoing-response", func(h *componentHost, _ *wit.Signature, f *httpFields, args []component.Value) ([]component.Value, error) {
	delete(h.reps, args[0].(uint32)) // the headers now belong to the response
	return h.fresh(&outgoingResponse{status: 200, headers: f})
})

var outgoingResponseStatus = method("outgoing-response.status-code", func(h *componentHost, _ *wit.Signature, r *outgoingResponse, args []component.Value) ([]component.Value, error) {
	return one(uint32(r.status)), nil
})

var outgoingResponseSetStatus = method("outgoing-response.set-status-code", func(h *componentHost, _ *wit.Signature, r *outgoingResponse, args []component.Value) ([]component.Value, error) {
	code, isU16 := args[1].(uint32)
	if !isU16 || code < 100 || code > 999 {
		return fail(nil), nil
	}
	r.status = uint16(code)
	return ok(nil), nil
})

var outgoingResponseHeaders = method("outgoing-response.headers", func(h *componentHost, _ *wit.Signature, r *outgoingResponse, args []component.Value) ([]component.Value, error) {
	return h.immutableHeaders(r.headers)
})

var outgoingResponseBody = method("outgoing-response.body", func(h *componentHost, _ *wit.Signature, r *outgoingResponse, args []component.Value) ([]component.Value, error) {
	if r.bodyTaken {
		return fail(nil), nil
	}
	r.bodyTaken = true
	inv := h.invocation()
	if inv == nil {
		return nil, errors.New("outgoing-response.body outside an invocation")
	}
	r.body = &outgoingBody{limit: inv.fn.limits.maxResponse, overflow: func() error {
		inv.failure = ErrResponseTooLarge
		return ErrResponseTooLarge
	}}
	handle, err := h.own(tagOutgoingBody, r.body)
	if err != nil {
		return nil, err
	}
	return ok(handle), nil
})

var responseOutparamSet = method("response-outparam.set", func(h *componentHost, _ *wit.Signature, p *responseOutparam, args []component.Value) ([]component.Value, error) {
	delete(h.reps, args[0].(uint32))
	r, isResult := args[1].(component.ResultValue)
	if !isResult {
		return nil, fmt.Errorf("response-outparam.set: want a result, got %T", args[1])
	}
	p.set = true
	if r.IsErr {
		p.err = true
		return nil, nil
	}
	resp, err := taken[*outgoingResponse](h, tagOutgoingResponse, r.Payload, "response-outparam.set")
	if err != nil {
		return nil, err
	}
	p.resp = resp
	return nil, nil
})

// --- outgoing requests ------------------------------------------------------------

var outgoingRequestNew = method("outgoing-request", func(h *componentHost, _ *wit.Signature, f *httpFields, args []component.Value) ([]component.Value, error) {
	delete(h.reps, args[0].(uint32))
	return h.fresh(&outgoingRequest{method: http.MethodGet, headers: f})
})

// outgoingRequestField is one of outgoing-request's getters and setters.
func outgoingRequestField(name string, get func(r *outgoingRequest) component.Value, set func(r *outgoingRequest, v component.Value) bool) hostFn {
	return func(h *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
		r, err := repOf[*outgoingRequest](h, args[0], "outgoing-request."+name)
		if err != nil {
			return nil, err
		}
		if set == nil {
			return one(get(r)), nil
		}
		if !set(r, args[1]) {
			return fail(nil), nil
		}
		return ok(nil), nil
	}
}

var (
	outgoingRequestMethod    = outgoingRequestField("method", func(r *outgoingRequest) component.Value { return methodValue(r.method) }, nil)
	outgoingRequestSetMethod = outgoingRequestField("set-method", nil, func(r *outgoingRequest, v component.Value) bool {
		m, err := methodOf(v)
		if err != nil {
			return false
		}
		r.method = m
		return true
	})
	outgoingRequestPath = outgoingRequestField("path-with-query", func(r *outgoingRequest) component.Value {
		if !r.pathSet {
			return nil
		}
		return r.pathQuery
	}, nil)
	outgoingRequestSetPath = outgoingRequestField("set-path-with-query", nil, func(r *outgoingRequest, v component.Value) bool {
		if v == nil {
			r.pathQuery, r.pathSet = "", false
			return true
		}
		s, isString := v.(string)
		if !isString || strings.ContainsAny(s, " \r\n") {
			return false
		}
		r.pathQuery, r.pathSet = s, true
		return true
	})
	outgoingRequestScheme = outgoingRequestField("scheme", func(r *outgoingRequest) component.Value {
		if !r.schemeSet {
			return nil
		}
		return schemeValue(r.scheme)
	}, nil)
	outgoingRequestSetScheme = outgoingRequestField("set-scheme", nil, func(r *outgoingRequest, v component.Value) bool {
		if v == nil {
			r.scheme, r.schemeSet = "", false
			return true
		}
		s, known := schemeOf(v)
		if !known {
			return false
		}
		r.scheme, r.schemeSet = s, true
		return true
	})
	outgoingRequestAuthority = outgoingRequestField("authority", func(r *outgoingRequest) component.Value {
		if r.authority == "" {
			return nil
		}
		return r.authority
	}, nil)
	outgoingRequestSetAuthority = outgoingRequestField("set-authority", nil, func(r *outgoingRequest, v component.Value) bool {
		if v == nil {
			r.authority = ""
			return true
		}
		s, isString := v.(string)
		if !isString || strings.ContainsAny(s, " /?#@\r\n") {
			return false
		}
		r.authority = s
		return true
	})
)

var outgoingRequestHeaders = method("outgoing-request.headers", func(h *componentHost, _ *wit.Signature, r *outgoingRequest, args []component.Value) ([]component.Value, error) {
	return h.immutableHeaders(r.headers)
})

var outgoingRequestBody = method("outgoing-request.body", func(h *componentHost, _ *wit.Signature, r *outgoingRequest, args []component.Value) ([]component.Value, error) {
	if r.bodyTaken {
		return fail(nil), nil
	}
	r.bodyTaken = true
	r.body = &outgoingBody{limit: maxDataLen, overflow: func() error {
		return fmt.Errorf("%w: request body over %d bytes", aegis.ErrLimitExceeded, maxDataLen)
	}}
	handle, err := h.own(tagOutgoingBody, r.body)
	if err != nil {
		return nil, err
	}
	return ok(handle), nil
})

func requestOptionsNew(h *componentHost, _ context.Context, _ *wit.Signature, _ []component.Value) ([]component.Value, error) {
	return h.fresh(&requestOptions{})
}

// requestOption is a getter or setter of request-options. The timeouts
// are kept and read back, but the invocation's own timeout is what bounds
// a fetch.
func requestOption(field func(o *requestOptions) *component.Value, set bool) hostFn {
	return func(h *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
		o, err := repOf[*requestOptions](h, args[0], "request-options")
		if err != nil {
			return nil, err
		}
		if !set {
			return one(*field(o)), nil
		}
		*field(o) = args[1]
		return ok(nil), nil
	}
}

var outgoingHandle = method("outgoing-handler.handle", func(h *componentHost, sig *wit.Signature, r *outgoingRequest, args []component.Value) ([]component.Value, error) {
	delete(h.reps, args[0].(uint32))
	if args[1] != nil {
		if _, err := taken[*requestOptions](h, tagRequestOptions, args[1], "outgoing-handler.handle"); err != nil {
			return nil, err
		}
	}
	if r.authority == "" {
		v, err := variant(sig, "error-code", "HTTP-request-URI-invalid", nil)
		if err != nil {
			return nil, err
		}
		return fail(v), nil
	}
	handle, err := h.own(tagFutureIncomingResponse, &futureResponse{req: r})
	if err != nil {
		return nil, err
	}
	return ok(handle), nil
})

// fetch sends the request through the host, once.
func (h *componentHost) fetch(f *futureResponse) {
	if f.done {
		return
	}
	f.done = true
	inv := h.invocation()
	if inv == nil || inv.host == nil {
		f.errorTag = "internal-error"
		return
	}
	r := f.req
	scheme := r.scheme
	if scheme == "" {
		scheme = "https"
	}
	path := r.pathQuery
	if path == "" {
		path = "/"
	}
	req := &FetchRequest{Method: r.method, URL: scheme + "://" + r.authority + path}
	if len(r.headers.names) > 0 {
		req.Headers = make(map[string]string, len(r.headers.names))
		for i, n := range r.headers.names {
			key := http.CanonicalHeaderKey(n)
			if prev, seen := req.Headers[key]; seen {
				req.Headers[key] = prev + ", " + string(r.headers.values[i])
			} else {
				req.Headers[key] = string(r.headers.values[i])
			}
		}
	}
	if r.body != nil {
		req.Body = r.body.buf.Bytes()
	}
	resp, err := inv.host.Fetch(inv.ctx, &inv.caller, req)
	if err != nil {
		f.errorTag = fetchErrorCase(err)
		return
	}
	in := &incomingResponse{status: uint16(resp.Status), headers: &httpFields{}, body: resp.Body}
	for k, v := range resp.Headers {
		for _, line := range FieldLines(v) {
			in.headers.names = append(in.headers.names, strings.ToLower(k))
			in.headers.values = append(in.headers.values, []byte(line))
		}
	}
	f.resp = in
}

// fetchErrorCase names the wasi:http error-code a refused or failed fetch
// is reported as.
func fetchErrorCase(err error) string {
	switch {
	case errors.Is(err, aegis.ErrPermissionDenied):
		return "HTTP-request-denied"
	case errors.Is(err, aegis.ErrLimitExceeded):
		return "HTTP-response-body-size"
	case errors.Is(err, aegis.ErrInvalidArgument):
		return "HTTP-request-URI-invalid"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTimeout):
		return "connection-timeout"
	}
	return "destination-unavailable"
}

var futureResponseSubscribe = method("future-incoming-response.subscribe", func(h *componentHost, _ *wit.Signature, f *futureResponse, args []component.Value) ([]component.Value, error) {
	h.fetch(f)
	return h.readyPollable()
})

var futureResponseGet = method("future-incoming-response.get", func(h *componentHost, sig *wit.Signature, f *futureResponse, args []component.Value) ([]component.Value, error) {
	h.fetch(f)
	if f.taken {
		// some(err): the answer was already taken.
		return one(component.ResultValue{IsErr: true}), nil
	}
	f.taken = true
	if f.resp == nil {
		v, err := variant(sig, "error-code", f.errorTag, nil)
		if err != nil {
			return nil, err
		}
		return one(component.ResultValue{Payload: component.ResultValue{IsErr: true, Payload: v}}), nil
	}
	handle, err := h.own(tagIncomingResponse, f.resp)
	if err != nil {
		return nil, err
	}
	return one(component.ResultValue{Payload: component.ResultValue{Payload: handle}}), nil
})

var incomingResponseStatus = method("incoming-response.status", func(h *componentHost, _ *wit.Signature, r *incomingResponse, args []component.Value) ([]component.Value, error) {
	return one(uint32(r.status)), nil
})

var incomingResponseHeaders = method("incoming-response.headers", func(h *componentHost, _ *wit.Signature, r *incomingResponse, args []component.Value) ([]component.Value, error) {
	return h.immutableHeaders(r.headers)
})

var incomingResponseConsume = method("incoming-response.consume", func(h *componentHost, _ *wit.Signature, r *incomingResponse, args []component.Value) ([]component.Value, error) {
	return h.once(&r.consumed, tagIncomingBody, &incomingBody{data: r.body})
})

func httpErrorCode(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	// No stream error of this host carries an HTTP error code.
	return one(nil), nil
}
