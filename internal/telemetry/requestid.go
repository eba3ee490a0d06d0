// Package telemetry owns what makes a request traceable: the request id
// that follows it through every hop, and the shared log keys (logkey). It
// depends on nothing else in Aegis.
package telemetry

import (
	"crypto/rand"
	"encoding/hex"
)

// NewRequestID returns a W3C-trace-id-shaped id: 16 random bytes as 32
// lower-case hex characters, so it can later become the trace id of a span.
func NewRequestID() string { return NewID() }

// NewID returns 16 random bytes from crypto/rand as 32 lower-case hex
// characters: the shape of every id the platform mints (request ids,
// asynchronous invocation ids, event ids).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// IsID reports whether s has the shape NewID gives an id. An id of that
// shape is also a valid NATS message id and key-value key.
func IsID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidRequestID reports whether an id taken from a client or a message
// header is safe to reuse: 8 to 64 characters of [0-9A-Za-z-]. Anything
// else is replaced by a fresh id so a caller cannot inject text into logs.
func ValidRequestID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}
