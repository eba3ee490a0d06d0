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
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
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
