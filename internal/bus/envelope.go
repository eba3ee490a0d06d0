package bus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// The envelope is what the bus stamps on every event it publishes: the
// producer, the request id of the chain, the hop count and an HMAC-SHA256
// over them, the subject and the payload, keyed by the event signing key
// (docs/events.md). Only the platform holds the key, so a message written
// straight into NATS by anyone else does not verify, and a trigger never
// invokes a function with it.
const (
	HeaderHop       = "Aegis-Hop"
	HeaderSignature = "Aegis-Signature"
)

// KeySize is the size of the event signing key in bytes; a shorter key is
// refused.
const KeySize = 32

// DefaultHopLimit is the highest hop a trigger delivers unless Config says
// otherwise.
const DefaultHopLimit = 16

// signatureV1 prefixes a version 1 signature: HMAC-SHA256 over the
// canonical encoding below, base64url without padding. A new encoding gets
// a new prefix, so both sides can tell which one a message uses.
const signatureV1 = "v1="

// maxHop bounds the hop header a verifier accepts, far above any limit, so
// that parsing it can never overflow.
const maxHop = 1 << 20

// Rejection reasons. Each is the error of the dead letter and the reason
// of the security log line.
var (
	errUnsigned          = errors.New("unsigned event")
	errSignatureVersion  = errors.New("unsupported signature version")
	errSignatureMismatch = errors.New("signature mismatch")
	errMalformedHop      = errors.New("malformed hop")
	errUnknownProducer   = errors.New("unknown producer")
	errTopicNotGranted   = errors.New("producer not granted topic")
	errKeyNotGranted     = errors.New("producer not granted object key")
	errHopLimit          = errors.New("hop limit exceeded")
)

// Envelope is what an event's signed headers say about it.
type Envelope struct {
	Producer  string // "app/function@version"
	RequestID string // the request that started the chain
	Hop       int    // 1 for an event published outside any event handler
}

// Sign returns the Aegis-Signature header of an event with this envelope,
// published on subject with data.
func (e Envelope) Sign(key []byte, subject string, data []byte) string {
	return signatureV1 + base64.RawURLEncoding.EncodeToString(e.mac(key, subject, data))
}

// Headers returns every envelope header of an event, signature included.
func (e Envelope) Headers(key []byte, subject string, data []byte) map[string]string {
	return map[string]string{
		HeaderProducer:  e.Producer,
		HeaderRequestID: e.RequestID,
		HeaderHop:       strconv.Itoa(e.Hop),
		HeaderSignature: e.Sign(key, subject, data),
	}
}

// mac computes HMAC-SHA256 over a canonical encoding of the envelope: a
// version label, then subject, producer, request id, hop (8 bytes, big
// endian) and data, each preceded by its length as 8 bytes, big endian.
// Length prefixes make the encoding unambiguous: no two different
// envelopes encode to the same bytes, whatever their fields contain.
func (e Envelope) mac(key []byte, subject string, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	writeField(m, []byte("aegis-event-v1"))
	writeField(m, []byte(subject))
	writeField(m, []byte(e.Producer))
	writeField(m, []byte(e.RequestID))
	var hop [8]byte
	binary.BigEndian.PutUint64(hop[:], uint64(e.Hop))
	writeField(m, hop[:])
	writeField(m, data)
	return m.Sum(nil)
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// Verify checks the envelope headers of a message on subject and returns
// what they say. The error is one of the rejection reasons. A missing
// header signs as empty, so dropping the producer or request id breaks the
// signature like changing them does.
func Verify(key []byte, subject string, hdr map[string]string, data []byte) (Envelope, error) {
	sig := hdr[HeaderSignature]
	if sig == "" {
		return Envelope{}, errUnsigned
	}
	enc, ok := strings.CutPrefix(sig, signatureV1)
	if !ok {
		return Envelope{}, errSignatureVersion
	}
	got, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(got) != sha256.Size {
		return Envelope{}, errSignatureMismatch
	}
	hop, ok := parseHop(hdr[HeaderHop])
	if !ok {
		return Envelope{}, errMalformedHop
	}
	e := Envelope{Producer: hdr[HeaderProducer], RequestID: hdr[HeaderRequestID], Hop: hop}
	if !hmac.Equal(got, e.mac(key, subject, data)) {
		return Envelope{}, errSignatureMismatch
	}
	return e, nil
}

// parseHop accepts only the canonical decimal form of 1..maxHop, so one
// header value stands for one hop and the signature covers exactly it.
func parseHop(s string) (int, bool) {
	if s == "" || len(s) > 7 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxHop
}

// parseProducer splits "app/function@version".
func parseProducer(p string) (app, function, version string, ok bool) {
	app, rest, ok1 := strings.Cut(p, "/")
	function, version, ok2 := strings.Cut(rest, "@")
	if !ok1 || !ok2 || app == "" || function == "" || version == "" {
		return "", "", "", false
	}
	return app, function, version, true
}
