package sandbox

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"bytes"
	"fmt"
	"strings"

	"github.com/aegis-platform/aegis"
)

// The decoders in this file read bytes written by the guest, which is
// untrusted code: they are strict (unknown fields and trailing data are
// errors), bounded, and fuzzed (decode_fuzz_test.go).

const (
	maxHeaders   = 100
	maxURLLen    = 8 << 10
	maxHeaderLen = 8 << 10 // one header name plus value
)

// responseMeta is the JSON a guest passes to response_set.
type responseMeta struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
}

// decodeResponseMeta parses response_set's meta document. Empty meta means
// status 200 and no headers. Header names and values are checked here, not
// only at the gateway, so a guest can never smuggle a CR/LF into a response.
func decodeResponseMeta(b []byte) (Response, error) {
	var m responseMeta
	if !parseResponseMeta(b, &m) && len(bytes.TrimSpace(b)) > 0 {
		var err error
		if m, err = strictResponseMeta(b); err != nil {
			return Response{}, fmt.Errorf("%w: response meta: %w", aegis.ErrInvalidArgument, err)
		}
	}
	if m.Status == 0 {
		m.Status = 200
	}
	if m.Status < 100 || m.Status > 599 {
		return Response{}, fmt.Errorf("%w: response status %d is not between 100 and 599", aegis.ErrInvalidArgument, m.Status)
	}
	if err := checkResponseHeaders(m.Headers); err != nil {
		return Response{}, fmt.Errorf("%w: response %w", aegis.ErrInvalidArgument, err)
	}
	return Response{Status: m.Status, Headers: m.Headers}, nil
}

// strictResponseMeta is decodeResponseMeta's reference decoder. It is a
// function of its own so that only this path, not every call, puts a
// responseMeta on the heap for the reflective decoder.
func strictResponseMeta(b []byte) (responseMeta, error) {
	var m responseMeta
	err := strictjson.Unmarshal(b, &m)
	return m, err
}

// parseResponseMeta is the fast path of decodeResponseMeta for the exact
// shape the SDKs write: {"status":N} or {"status":N,"headers":{"K":"V",...}}
// with no white space, plain printable ASCII strings, no escapes and no
// repeated header. It reports false on anything else, leaving m in any
// state, and the strict decoder, which stays the reference, decides
// (FuzzDecodeResponseMeta checks the two agree). It exists because the
// reflective decoder was a tenth of a warm invocation's host-side cost.
func parseResponseMeta(b []byte, m *responseMeta) bool {
	const statusKey, headersKey = `{"status":`, `,"headers":{`
	if !bytes.HasPrefix(b, []byte(statusKey)) {
		return false
	}
	i := len(statusKey)
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 4 {
		i++
	}
	if n := i - start; n == 0 || (n > 1 && b[start] == '0') {
		return false
	}
	for _, c := range b[start:i] {
		m.Status = m.Status*10 + int(c-'0')
	}
	if i < len(b) && b[i] == '}' {
		return i+1 == len(b)
	}
	if !bytes.HasPrefix(b[i:], []byte(headersKey)) {
		return false
	}
	i += len(headersKey)
	m.Headers = map[string]string{}
	for {
		name, next, ok := plainString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return false
		}
		value, next, ok := plainString(b, next+1)
		if !ok || next >= len(b) {
			return false
		}
		if _, dup := m.Headers[name]; dup {
			return false
		}
		m.Headers[name] = value
		switch b[next] {
		case ',':
			i = next + 1
		case '}':
			return next+2 == len(b) && b[next+1] == '}'
		default:
			return false
		}
	}
}

// plainString reads a JSON string at b[i] made only of printable ASCII
// without quotes or backslashes, and returns it and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	start := i + 1
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[start:j]), j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// decodeFetchRequest parses fetch's request document. The host's egress
// layer checks the destination; this only guarantees a well-formed request.
func decodeFetchRequest(b []byte) (*FetchRequest, error) {
	var r FetchRequest
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: fetch request: %w", aegis.ErrInvalidArgument, err)
	}
	if r.Method == "" {
		r.Method = "GET"
	}
	if !isToken(r.Method) {
		return nil, fmt.Errorf("%w: fetch method %q is not a valid HTTP method", aegis.ErrInvalidArgument, r.Method)
	}
	if r.URL == "" || len(r.URL) > maxURLLen || strings.ContainsFunc(r.URL, isCTL) {
		return nil, fmt.Errorf("%w: fetch url is empty, too long or has control characters", aegis.ErrInvalidArgument)
	}
	if err := checkHeaders(r.Headers); err != nil {
		return nil, fmt.Errorf("%w: fetch %w", aegis.ErrInvalidArgument, err)
	}
	return &r, nil
}

// decodeInvokeRequest parses invoke's request document. The capability
// matches the path against the caller's app and checks the grant; this
// only guarantees a well-formed request.
func decodeInvokeRequest(b []byte) (*InvokeRequest, error) {
	var r InvokeRequest
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: invoke request: %w", aegis.ErrInvalidArgument, err)
	}
	if r.Method == "" {
		r.Method = "GET"
	}
	if !isToken(r.Method) {
		return nil, fmt.Errorf("%w: invoke method %q is not a valid HTTP method", aegis.ErrInvalidArgument, r.Method)
	}
	if r.Path == "" || len(r.Path) > maxURLLen || strings.ContainsFunc(r.Path, isCTL) {
		return nil, fmt.Errorf("%w: invoke path is empty, too long or has control characters", aegis.ErrInvalidArgument)
	}
	if err := checkHeaders(r.Headers); err != nil {
		return nil, fmt.Errorf("%w: invoke %w", aegis.ErrInvalidArgument, err)
	}
	return &r, nil
}

func checkHeaders(h map[string]string) error {
	return checkHeaderMap(h, false)
}

// checkResponseHeaders is checkHeaders for a response, whose values may
// hold several field lines separated by LF (see SplitFieldLines).
func checkResponseHeaders(h map[string]string) error {
	return checkHeaderMap(h, true)
}

func checkHeaderMap(h map[string]string, fieldLines bool) error {
	if len(h) > maxHeaders {
		return fmt.Errorf("has %d headers, at most %d allowed", len(h), maxHeaders)
	}
	for name, value := range h {
		if !isToken(name) {
			return fmt.Errorf("header %q is not a valid token", name)
		}
		lines := 1
		if fieldLines {
			lines = strings.Count(value, "\n") + 1
		}
		if lines > maxHeaders {
			return fmt.Errorf("header %q has %d field lines, at most %d allowed", name, lines, maxHeaders)
		}
		for i := 0; i < lines; i++ {
			line := value
			if lines > 1 {
				line, value, _ = strings.Cut(value, "\n")
			}
			if len(name)+len(line) > maxHeaderLen {
				return fmt.Errorf("header %q is longer than %d bytes", name, maxHeaderLen)
			}
			if strings.ContainsFunc(line, func(r rune) bool { return r != '\t' && isCTL(r) }) {
				return fmt.Errorf("header %q has control characters in its value", name)
			}
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isCTL(r rune) bool { return r < 0x20 || r == 0x7f }
