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
	"time"

	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/manifest"
)

// The envelope is what the bus stamps on every event it publishes: the
// producer, the request id of the chain, the hop count, the event's own id
// and the time it was signed, and, for an event replayed from the
// dead-letter stream, who replayed it; then an HMAC-SHA256 over them, the
// subject and the payload, keyed by the event signing key
// (docs/events.md). Only the platform holds the key, so a message written
// straight into NATS by anyone else does not verify, and a trigger never
// invokes a function with it. The id and time make a genuine event usable
// once: a copy published again is recognised by its id (replay.go).
const (
	HeaderHop        = "Aegis-Hop"
	HeaderSignature  = "Aegis-Signature"
	HeaderEventID    = "Aegis-Event-Id"
	HeaderEventTime  = "Aegis-Event-Time" // unix milliseconds
	HeaderReplayedBy = "Aegis-Replayed-By"
	HeaderOrigin     = "Aegis-Origin" // the principal the chain is charged to, percent-encoded (encodeOrigin)
	HeaderPath       = "Aegis-Path"   // the functions of the chain so far, comma-separated
	// HeaderTraceparent is the W3C traceparent of the span that published
	// the event (the producer's invocation): the invocation the event
	// causes is its child in `aegis trace`.
	HeaderTraceparent = "Aegis-Traceparent"
)

// KeySize is the size of the event signing key in bytes; a shorter key is
// refused.
const KeySize = 32

// DefaultHopLimit is the highest hop a trigger delivers unless Config says
// otherwise.
const DefaultHopLimit = 16

// Signature versions: HMAC-SHA256 over the canonical encoding below,
// base64url without padding, after a prefix naming the encoding, so both
// sides can tell which one a message uses. Version 1 carried no event id
// and no time, so it cannot be told from its own replay: triggers refuse
// it, and only a dead letter signed before version 2 is still checked
// with it, so that `aegis dlq replay` can re-sign it.
//
// Version 3 adds the chain's origin (who it is charged to) and path (the
// functions it went through); it has its own label, so a version 3
// envelope cannot be shown as version 2 with the origin dropped, and a
// version 2 one, which carries neither, is read with both empty whatever
// headers come with it.
const (
	signatureV1 = "v1="
	signatureV2 = "v2="
	signatureV3 = "v3="
	signatureV4 = "v4="
)

// maxOrigin bounds the origin header: a key name, or a JWT issuer URL and
// subject.
const maxOrigin = 1024

// maxHop bounds the hop header a verifier accepts, far above any limit, so
// that parsing it can never overflow.
const maxHop = 1 << 20

// maxReplayedBy bounds the replayed-by header: an admin token's name is at
// most 64 characters.
const maxReplayedBy = 128

// Rejection reasons. Each is the error of the dead letter and the reason
// of the security log line.
var (
	errUnsigned          = errors.New("unsigned event")
	errSignatureVersion  = errors.New("unsupported signature version")
	errSignatureMismatch = errors.New("signature mismatch")
	errMalformedHop      = errors.New("malformed hop")
	errMalformedEnvelope = errors.New("malformed event id or time")
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
	// ID is unique to this event: 32 lower-case hex characters, random. It
	// is also the message's Nats-Msg-Id. Empty only in a version 1
	// signature.
	ID string
	// Time is when the event was signed, to the millisecond.
	Time time.Time
	// ReplayedBy names the admin who replayed the event from the
	// dead-letter stream; empty for an event as first published.
	ReplayedBy string
	// Origin is the principal the chain is charged to
	// (sandbox.Request.Origin); Path the functions it went through, the
	// producer last (sandbox.Request.Chain). Both empty in versions 1 and 2.
	Origin string
	Path   []string
	// Trace is the span that published the event (TraceID and SpanID;
	// ParentID unused): the consuming invocation is its child. Empty in
	// versions 1 to 3.
	Trace telemetry.Span
}

// NewEnvelope returns the envelope of a new event: a fresh random id, and
// the current time.
func NewEnvelope(producer, requestID string, hop int) Envelope {
	return Envelope{Producer: producer, RequestID: requestID, Hop: hop, ID: telemetry.NewID(), Time: time.UnixMilli(time.Now().UnixMilli())}
}

// Sign returns the Aegis-Signature header of an event with this envelope,
// published on subject with data.
func (e Envelope) Sign(key []byte, subject string, data []byte) string {
	return signatureV4 + base64.RawURLEncoding.EncodeToString(e.macV4(key, subject, data))
}

// Headers returns every envelope header of an event, signature included.
func (e Envelope) Headers(key []byte, subject string, data []byte) map[string]string {
	h := map[string]string{
		HeaderProducer:  e.Producer,
		HeaderRequestID: e.RequestID,
		HeaderHop:       strconv.Itoa(e.Hop),
		HeaderEventID:   e.ID,
		HeaderEventTime: strconv.FormatInt(e.Time.UnixMilli(), 10),
		HeaderSignature: e.Sign(key, subject, data),
	}
	if e.ReplayedBy != "" {
		h[HeaderReplayedBy] = e.ReplayedBy
	}
	if e.Origin != "" {
		h[HeaderOrigin] = encodeOrigin(e.Origin)
	}
	if len(e.Path) > 0 {
		h[HeaderPath] = strings.Join(e.Path, ",")
	}
	if tp := e.Trace.Traceparent(); tp != "" {
		h[HeaderTraceparent] = tp
	}
	return h
}

// macV4 is version 3's encoding with the traceparent before the data:
// signed so that a message forged on NATS cannot graft itself into
// someone else's trace.
func (e Envelope) macV4(key []byte, subject string, data []byte) []byte {
	m := e.macHead(key, "aegis-event-v4", subject)
	e.writeV3Fields(m)
	writeField(m, []byte(e.Trace.Traceparent()))
	writeField(m, data)
	return m.Sum(nil)
}

// macV3 is version 2's encoding with the origin and the path (joined by
// commas; function names cannot contain one) before the data.
func (e Envelope) macV3(key []byte, subject string, data []byte) []byte {
	m := e.macHead(key, "aegis-event-v3", subject)
	e.writeV3Fields(m)
	writeField(m, data)
	return m.Sum(nil)
}

// writeV3Fields writes what version 3 added to version 1's head: id,
// time, replayed-by, origin and path.
func (e Envelope) writeV3Fields(m hash.Hash) {
	writeField(m, []byte(e.ID))
	writeField(m, uint64Field(uint64(e.Time.UnixMilli())))
	writeField(m, []byte(e.ReplayedBy))
	writeField(m, []byte(e.Origin))
	writeField(m, []byte(strings.Join(e.Path, ",")))
}

// mac computes HMAC-SHA256 over a canonical encoding of the envelope: a
// version label, then subject, producer, request id, hop (8 bytes, big
// endian), event id, time (unix milliseconds, 8 bytes, big endian),
// replayed-by and data, each preceded by its length as 8 bytes, big
// endian. Length prefixes make the encoding unambiguous: no two different
// envelopes encode to the same bytes, whatever their fields contain.
func (e Envelope) mac(key []byte, subject string, data []byte) []byte {
	m := e.macHead(key, "aegis-event-v2", subject)
	writeField(m, []byte(e.ID))
	writeField(m, uint64Field(uint64(e.Time.UnixMilli())))
	writeField(m, []byte(e.ReplayedBy))
	writeField(m, data)
	return m.Sum(nil)
}

// macV1 is the version 1 encoding: label, subject, producer, request id,
// hop and data.
func (e Envelope) macV1(key []byte, subject string, data []byte) []byte {
	m := e.macHead(key, "aegis-event-v1", subject)
	writeField(m, data)
	return m.Sum(nil)
}

// macHead starts an HMAC with the fields both versions begin with: the
// version label, subject, producer, request id and hop.
func (e Envelope) macHead(key []byte, label, subject string) hash.Hash {
	m := hmac.New(sha256.New, key)
	writeField(m, []byte(label))
	writeField(m, []byte(subject))
	writeField(m, []byte(e.Producer))
	writeField(m, []byte(e.RequestID))
	writeField(m, uint64Field(uint64(e.Hop)))
	return m
}

func uint64Field(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func writeField(h hash.Hash, b []byte) {
	h.Write(uint64Field(uint64(len(b))))
	h.Write(b)
}

// Verify checks the envelope headers of a message on subject and returns
// what they say. The error is one of the rejection reasons. A missing
// header signs as empty, so dropping the producer or request id breaks the
// signature like changing them does. A version 1 signature verifies with
// an empty ID: callers delivering events refuse it (Bus.handle).
func Verify(key []byte, subject string, hdr map[string]string, data []byte) (Envelope, error) {
	sig := hdr[HeaderSignature]
	if sig == "" {
		return Envelope{}, errUnsigned
	}
	version, enc := sig[:min(len(sig), len(signatureV2))], sig[min(len(sig), len(signatureV2)):]
	if version != signatureV1 && version != signatureV2 && version != signatureV3 && version != signatureV4 {
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
	if version == signatureV1 {
		if !hmac.Equal(got, e.macV1(key, subject, data)) {
			return Envelope{}, errSignatureMismatch
		}
		return e, nil
	}
	ms, ok := parseMillis(hdr[HeaderEventTime])
	if !ok || !telemetry.IsID(hdr[HeaderEventID]) || len(hdr[HeaderReplayedBy]) > maxReplayedBy {
		return Envelope{}, errMalformedEnvelope
	}
	e.ID, e.Time, e.ReplayedBy = hdr[HeaderEventID], time.UnixMilli(ms), hdr[HeaderReplayedBy]
	if version == signatureV2 {
		if !hmac.Equal(got, e.mac(key, subject, data)) {
			return Envelope{}, errSignatureMismatch
		}
		return e, nil
	}
	origin, ok := decodeOrigin(hdr[HeaderOrigin])
	path, ok2 := parsePath(hdr[HeaderPath])
	if !ok || !ok2 {
		return Envelope{}, errMalformedEnvelope
	}
	e.Origin, e.Path = origin, path
	if version == signatureV3 {
		if !hmac.Equal(got, e.macV3(key, subject, data)) {
			return Envelope{}, errSignatureMismatch
		}
		return e, nil
	}
	// Version 4: the traceparent is signed; one that does not parse is a
	// malformed envelope, not a trace to start afresh.
	if tp := hdr[HeaderTraceparent]; tp != "" {
		parent, ok := telemetry.ParseTraceparent(tp)
		if !ok {
			return Envelope{}, errMalformedEnvelope
		}
		e.Trace = telemetry.Span{TraceID: parent.TraceID, SpanID: parent.ParentID}
		if e.Trace.Traceparent() != tp {
			return Envelope{}, errMalformedEnvelope // one trace context, one header value
		}
	}
	if !hmac.Equal(got, e.macV4(key, subject, data)) {
		return Envelope{}, errSignatureMismatch
	}
	return e, nil
}

// encodeOrigin percent-encodes what a header value must not hold (control
// characters, non-ASCII, and '%' itself): a JWT's subject is whatever its
// issuer chose.
func encodeOrigin(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// decodeOrigin reads an encoded origin, accepting only the encoding
// encodeOrigin writes, so one origin has one header value.
func decodeOrigin(h string) (string, bool) {
	if len(h) > 3*maxOrigin {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(h) {
			return "", false
		}
		v, err := strconv.ParseUint(h[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	s := b.String()
	return s, len(s) <= maxOrigin && encodeOrigin(s) == h
}

// parsePath reads the comma-separated function names of a path: at most
// sandbox.MaxChain, each a valid function name.
func parsePath(h string) ([]string, bool) {
	if h == "" {
		return nil, true
	}
	names := strings.Split(h, ",")
	if len(names) > sandbox.MaxChain {
		return nil, false
	}
	for _, n := range names {
		if !manifest.ValidName(n) {
			return nil, false
		}
	}
	return names, true
}

// parseMillis accepts only the canonical decimal form of a positive
// millisecond time of at most 15 digits (past the year 30000), so one
// header value stands for one time.
func parseMillis(s string) (int64, bool) {
	if s == "" || len(s) > 15 || s[0] == '0' {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
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
