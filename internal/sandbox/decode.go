package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	if len(bytes.TrimSpace(b)) > 0 {
		if err := strictUnmarshal(b, &m); err != nil {
			return Response{}, fmt.Errorf("%w: response meta: %w", aegis.ErrInvalidArgument, err)
		}
	}
	if m.Status == 0 {
		m.Status = 200
	}
	if m.Status < 100 || m.Status > 599 {
		return Response{}, fmt.Errorf("%w: response status %d is not between 100 and 599", aegis.ErrInvalidArgument, m.Status)
	}
	if err := checkHeaders(m.Headers); err != nil {
		return Response{}, fmt.Errorf("%w: response %w", aegis.ErrInvalidArgument, err)
	}
	return Response{Status: m.Status, Headers: m.Headers}, nil
}

// decodeFetchRequest parses fetch's request document. The host's egress
// layer checks the destination; this only guarantees a well-formed request.
func decodeFetchRequest(b []byte) (*FetchRequest, error) {
	var r FetchRequest
	if err := strictUnmarshal(b, &r); err != nil {
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

// strictUnmarshal decodes exactly one JSON value into v, refusing unknown
// fields and anything after the value.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

func checkHeaders(h map[string]string) error {
	if len(h) > maxHeaders {
		return fmt.Errorf("has %d headers, at most %d allowed", len(h), maxHeaders)
	}
	for name, value := range h {
		if !isToken(name) {
			return fmt.Errorf("header name %q is not a valid token", name)
		}
		if len(name)+len(value) > maxHeaderLen {
			return fmt.Errorf("header %q is longer than %d bytes", name, maxHeaderLen)
		}
		if strings.ContainsFunc(value, func(r rune) bool { return r != '\t' && isCTL(r) }) {
			return fmt.Errorf("header %q has control characters in its value", name)
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
