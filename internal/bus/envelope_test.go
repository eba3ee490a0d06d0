package bus

import (
	"bytes"
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/manifest"
)

var (
	testKey  = bytes.Repeat([]byte{7}, KeySize)
	otherKey = bytes.Repeat([]byte{8}, KeySize)
)

const testSubject = "aegis.ev.diary.image.saved"

var testEnvelope = Envelope{
	Producer: "diary/save-entry@v3", RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Hop: 2,
	ID: "00112233445566778899aabbccddeeff", Time: time.UnixMilli(1_780_000_000_123),
	Origin: "jwt:https://id.example#alice\n%é", Path: []string{"upload", "save-entry"},
	Trace: telemetry.Span{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"},
}

// sameEnvelope compares envelopes field by field (Path is a slice).
func sameEnvelope(a, b Envelope) bool {
	return a.Producer == b.Producer && a.RequestID == b.RequestID && a.Hop == b.Hop && a.ID == b.ID &&
		a.Time.Equal(b.Time) && a.ReplayedBy == b.ReplayedBy && a.Origin == b.Origin && slices.Equal(a.Path, b.Path)
}

func signedHeaders() (map[string]string, []byte) {
	data := []byte(`{"id":"42"}`)
	return testEnvelope.Headers(testKey, testSubject, data), data
}

func TestVerifyAcceptsWhatSignWrote(t *testing.T) {
	hdr, data := signedHeaders()
	env, err := Verify(testKey, testSubject, hdr, data)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEnvelope(env, testEnvelope) {
		t.Errorf("envelope %+v, want %+v", env, testEnvelope)
	}
	if !strings.HasPrefix(hdr[HeaderSignature], "v4=") {
		t.Errorf("signature %q lacks its version prefix", hdr[HeaderSignature])
	}
	if _, ok := hdr[HeaderReplayedBy]; ok {
		t.Errorf("a first publication names a replayer: %v", hdr)
	}
	replayed := testEnvelope
	replayed.ReplayedBy = "ops-alice"
	hdr = replayed.Headers(testKey, testSubject, data)
	if env, err := Verify(testKey, testSubject, hdr, data); err != nil || !sameEnvelope(env, replayed) {
		t.Errorf("replayed envelope: %+v, %v", env, err)
	}
}

func TestNewEnvelopesHaveFreshIDs(t *testing.T) {
	a, b := NewEnvelope("diary/f@v1", "r", 1), NewEnvelope("diary/f@v1", "r", 1)
	if !telemetry.IsID(a.ID) || a.ID == b.ID {
		t.Errorf("ids %q and %q", a.ID, b.ID)
	}
	if d := time.Since(a.Time); d < 0 || d > time.Minute {
		t.Errorf("time %s is not now", a.Time)
	}
}

// A dead letter signed before event ids existed still verifies, with no
// id, so that it can be replayed (and re-signed); nothing else about it
// changed.
func TestVerifyReadsVersion1(t *testing.T) {
	data := []byte(`{"id":"42"}`)
	old := Envelope{Producer: "diary/save-entry@v3", RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Hop: 2}
	hdr := map[string]string{
		HeaderProducer: old.Producer, HeaderRequestID: old.RequestID, HeaderHop: "2",
		HeaderSignature: "v1=" + base64.RawURLEncoding.EncodeToString(old.macV1(testKey, testSubject, data)),
	}
	env, err := Verify(testKey, testSubject, hdr, data)
	if err != nil || !sameEnvelope(env, old) {
		t.Fatalf("v1: %+v, %v", env, err)
	}
	hdr[HeaderHop] = "3"
	if _, err := Verify(testKey, testSubject, hdr, data); !errors.Is(err, errSignatureMismatch) {
		t.Errorf("tampered v1: %v", err)
	}
}

// An event signed by a server from before envelopes carried a trace
// context (version 3) still verifies, without one.
func TestVerifyReadsVersion3(t *testing.T) {
	data := []byte(`{"id":"42"}`)
	old := testEnvelope
	old.Trace = telemetry.Span{}
	hdr := old.Headers(testKey, testSubject, data)
	hdr[HeaderSignature] = signatureV3 + base64.RawURLEncoding.EncodeToString(old.macV3(testKey, testSubject, data))
	env, err := Verify(testKey, testSubject, hdr, data)
	if err != nil || !sameEnvelope(env, old) || env.Trace != (telemetry.Span{}) {
		t.Fatalf("v3: %+v, %v", env, err)
	}
	// A trace context added to a v3 event is not read: version 3 never
	// signed one.
	hdr[HeaderTraceparent] = testEnvelope.Trace.Traceparent()
	if env, err := Verify(testKey, testSubject, hdr, data); err != nil || env.Trace != (telemetry.Span{}) {
		t.Errorf("v3 with a traceparent added: %+v, %v", env, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		subject string
		edit    func(h map[string]string)
		data    []byte // nil: the signed data
		want    error
	}{
		{name: "tampered data", data: []byte(`{"id":"43"}`), want: errSignatureMismatch},
		{name: "data dropped", data: []byte{}, want: errSignatureMismatch},
		{name: "tampered hop", edit: func(h map[string]string) { h[HeaderHop] = "1" }, want: errSignatureMismatch},
		{name: "tampered producer", edit: func(h map[string]string) { h[HeaderProducer] = "diary/admin@v3" }, want: errSignatureMismatch},
		{name: "producer dropped", edit: func(h map[string]string) { delete(h, HeaderProducer) }, want: errSignatureMismatch},
		{name: "tampered request id", edit: func(h map[string]string) { h[HeaderRequestID] = "00000000000000000000000000000000" }, want: errSignatureMismatch},
		{name: "other subject", subject: "aegis.ev.other-app.image.saved", want: errSignatureMismatch},
		{name: "other key", key: otherKey, want: errSignatureMismatch},
		{name: "missing signature", edit: func(h map[string]string) { delete(h, HeaderSignature) }, want: errUnsigned},
		{name: "empty signature", edit: func(h map[string]string) { h[HeaderSignature] = "" }, want: errUnsigned},
		{name: "no version prefix", edit: func(h map[string]string) { h[HeaderSignature] = strings.TrimPrefix(h[HeaderSignature], "v4=") }, want: errSignatureVersion},
		{name: "unknown version", edit: func(h map[string]string) { h[HeaderSignature] = "v5=" + strings.TrimPrefix(h[HeaderSignature], "v4=") }, want: errSignatureVersion},
		{name: "downgraded to v1", edit: func(h map[string]string) { h[HeaderSignature] = "v1=" + strings.TrimPrefix(h[HeaderSignature], "v4=") }, want: errSignatureMismatch},
		{name: "downgraded to v2", edit: func(h map[string]string) { h[HeaderSignature] = "v2=" + strings.TrimPrefix(h[HeaderSignature], "v4=") }, want: errSignatureMismatch},
		{name: "downgraded to v3", edit: func(h map[string]string) { h[HeaderSignature] = "v3=" + strings.TrimPrefix(h[HeaderSignature], "v4=") }, want: errSignatureMismatch},
		{name: "tampered traceparent", edit: func(h map[string]string) {
			h[HeaderTraceparent] = "00-0af7651916cd43dd8448eb211c80319c-0000000000000001-01"
		}, want: errSignatureMismatch},
		{name: "traceparent dropped", edit: func(h map[string]string) { delete(h, HeaderTraceparent) }, want: errSignatureMismatch},
		{name: "traceparent malformed", edit: func(h map[string]string) { h[HeaderTraceparent] = "00-xyz" }, want: errMalformedEnvelope},
		{name: "traceparent not canonical", edit: func(h map[string]string) { h[HeaderTraceparent] = h[HeaderTraceparent][:54] + "0" }, want: errMalformedEnvelope},
		{name: "tampered origin", edit: func(h map[string]string) { h[HeaderOrigin] = "key:other" }, want: errSignatureMismatch},
		{name: "origin dropped", edit: func(h map[string]string) { delete(h, HeaderOrigin) }, want: errSignatureMismatch},
		{name: "origin not canonical", edit: func(h map[string]string) { h[HeaderOrigin] = strings.Replace(h[HeaderOrigin], "%0A", "%0a", 1) }, want: errMalformedEnvelope},
		{name: "origin bad escape", edit: func(h map[string]string) { h[HeaderOrigin] += "%G" }, want: errMalformedEnvelope},
		{name: "tampered path", edit: func(h map[string]string) { h[HeaderPath] = "save-entry" }, want: errSignatureMismatch},
		{name: "path dropped", edit: func(h map[string]string) { delete(h, HeaderPath) }, want: errSignatureMismatch},
		{name: "path not names", edit: func(h map[string]string) { h[HeaderPath] = "Upload,save-entry" }, want: errMalformedEnvelope},
		{name: "path too long", edit: func(h map[string]string) { h[HeaderPath] = strings.Repeat("a,", sandbox.MaxChain) + "a" }, want: errMalformedEnvelope},
		{name: "tampered event id", edit: func(h map[string]string) { h[HeaderEventID] = "ffffffffffffffffffffffffffffffff" }, want: errSignatureMismatch},
		{name: "tampered time", edit: func(h map[string]string) { h[HeaderEventTime] = "1780000000124" }, want: errSignatureMismatch},
		{name: "replayer added", edit: func(h map[string]string) { h[HeaderReplayedBy] = "root" }, want: errSignatureMismatch},
		{name: "event id dropped", edit: func(h map[string]string) { delete(h, HeaderEventID) }, want: errMalformedEnvelope},
		{name: "event id upper case", edit: func(h map[string]string) { h[HeaderEventID] = strings.ToUpper(h[HeaderEventID]) }, want: errMalformedEnvelope},
		{name: "time dropped", edit: func(h map[string]string) { delete(h, HeaderEventTime) }, want: errMalformedEnvelope},
		{name: "time with leading zero", edit: func(h map[string]string) { h[HeaderEventTime] = "0" + h[HeaderEventTime] }, want: errMalformedEnvelope},
		{name: "time not a number", edit: func(h map[string]string) { h[HeaderEventTime] = "soon" }, want: errMalformedEnvelope},
		{name: "replayer too long", edit: func(h map[string]string) { h[HeaderReplayedBy] = strings.Repeat("a", 200) }, want: errMalformedEnvelope},
		{name: "truncated signature", edit: func(h map[string]string) { h[HeaderSignature] = h[HeaderSignature][:20] }, want: errSignatureMismatch},
		{name: "signature not base64url", edit: func(h map[string]string) { h[HeaderSignature] = "v3=" + strings.Repeat("!", 43) }, want: errSignatureMismatch},
		{name: "missing hop", edit: func(h map[string]string) { delete(h, HeaderHop) }, want: errMalformedHop},
		{name: "hop with leading zero", edit: func(h map[string]string) { h[HeaderHop] = "02" }, want: errMalformedHop},
		{name: "hop with sign", edit: func(h map[string]string) { h[HeaderHop] = "+2" }, want: errMalformedHop},
		{name: "hop zero", edit: func(h map[string]string) { h[HeaderHop] = "0" }, want: errMalformedHop},
		{name: "hop negative", edit: func(h map[string]string) { h[HeaderHop] = "-2" }, want: errMalformedHop},
		{name: "hop huge", edit: func(h map[string]string) { h[HeaderHop] = "99999999999999999999" }, want: errMalformedHop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr, data := signedHeaders()
			hdr = maps.Clone(hdr)
			if tc.edit != nil {
				tc.edit(hdr)
			}
			if tc.data != nil {
				data = tc.data
			}
			key, subject := testKey, testSubject
			if tc.key != nil {
				key = tc.key
			}
			if tc.subject != "" {
				subject = tc.subject
			}
			if _, err := Verify(key, subject, hdr, data); !errors.Is(err, tc.want) {
				t.Errorf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// Moving bytes from one field to the next must change the signature: the
// length prefixes keep field boundaries inside what is signed.
func TestSignatureKeepsFieldBoundaries(t *testing.T) {
	a := Envelope{Producer: "diary/f@v1", RequestID: "ab", Hop: 1}
	b := Envelope{Producer: "diary/f@v1a", RequestID: "b", Hop: 1}
	if a.Sign(testKey, "s", nil) == b.Sign(testKey, "s", nil) {
		t.Error("producer and request id share a boundary")
	}
	c := Envelope{Producer: "diary/f@v1", ID: "ab", ReplayedBy: "c"}
	d := Envelope{Producer: "diary/f@v1", ID: "a", ReplayedBy: "bc"}
	if c.Sign(testKey, "s", nil) == d.Sign(testKey, "s", nil) {
		t.Error("event id and replayer share a boundary")
	}
	if a.Sign(testKey, "s", []byte("x")) == a.Sign(testKey, "sx", nil) {
		t.Error("subject and data share a boundary")
	}
}

func TestParseProducer(t *testing.T) {
	app, fn, ver, ok := parseProducer("diary/save-entry@v3")
	if !ok || app != "diary" || fn != "save-entry" || ver != "v3" {
		t.Errorf("got %q %q %q %v", app, fn, ver, ok)
	}
	for _, bad := range []string{"", "diary", "diary/save-entry", "/f@v1", "diary/@v1", "diary/f@"} {
		if _, _, _, ok := parseProducer(bad); ok {
			t.Errorf("parseProducer(%q) accepted", bad)
		}
	}
}

func TestProducerGranted(t *testing.T) {
	snap := &registry.Snapshot{Apps: map[string]*registry.App{
		"diary": {Name: "diary", Manifest: &manifest.Manifest{App: "diary", Functions: map[string]*manifest.Function{
			"save-entry": {Grants: manifest.Grants{
				Events:  manifest.EventGrants{Publish: []string{"image.*"}},
				Objects: manifest.ReadWrite{Read: []string{"*"}, Write: []string{"images/*"}},
			}},
			"reader": {},
		}}},
	}}
	event := func(topic string) *sandbox.Request { return &sandbox.Request{Kind: sandbox.KindEvent, Topic: topic} }
	object := func(key string) *sandbox.Request { return &sandbox.Request{Kind: sandbox.KindObject, Key: key} }
	tests := []struct {
		app, producer string
		req           *sandbox.Request
		want          error
	}{
		{"diary", "diary/save-entry@v3", event("image.saved"), nil},
		{"diary", "diary/save-entry@v1", event("image.saved"), nil}, // an older version still counts
		{"diary", "diary/save-entry@v3", event("entry.saved"), errTopicNotGranted},
		{"diary", "diary/reader@v3", event("image.saved"), errTopicNotGranted},
		{"diary", "diary/ghost@v3", event("image.saved"), errUnknownProducer},
		{"diary", "other/save-entry@v3", event("image.saved"), errUnknownProducer},
		{"other", "other/save-entry@v3", event("image.saved"), errUnknownProducer},
		{"diary", "", event("image.saved"), errUnknownProducer},
		{"diary", "diary/save-entry@v3", object("images/cat.png"), nil},
		{"diary", "diary/save-entry@v3", object("notes/cat.txt"), errKeyNotGranted}, // read is not enough
		{"diary", "diary/reader@v3", object("images/cat.png"), errKeyNotGranted},
	}
	for _, tc := range tests {
		if err := producerGranted(snap, tc.app, tc.producer, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s by %s on %s%s: %v, want %v", tc.req.Kind, tc.producer, tc.req.Topic, tc.req.Key, err, tc.want)
		}
	}
}

func TestPublishedHopIsOneMoreThanTheCallers(t *testing.T) {
	b := &Bus{}
	for _, tc := range []struct{ caller, want int }{{0, 1}, {1, 2}, {15, 16}, {-3, 1}} {
		env := b.envelope(&sandbox.Caller{App: "diary", Function: "f", Version: "v2", RequestID: "r", Hop: tc.caller})
		if env.Hop != tc.want || env.Producer != "diary/f@v2" || env.RequestID != "r" {
			t.Errorf("caller hop %d: %+v, want hop %d", tc.caller, env, tc.want)
		}
	}
}

// An event signed before envelopes carried an origin and a path (v2)
// still verifies, and headers claiming either are ignored: they were not
// signed.
func TestVerifyReadsVersion2WithoutOrigin(t *testing.T) {
	data := []byte(`{"id":"42"}`)
	old := testEnvelope
	old.Origin, old.Path = "", nil
	hdr := map[string]string{
		HeaderProducer: old.Producer, HeaderRequestID: old.RequestID, HeaderHop: "2",
		HeaderEventID: old.ID, HeaderEventTime: "1780000000123",
		HeaderSignature: signatureV2 + base64.RawURLEncoding.EncodeToString(old.mac(testKey, testSubject, data)),
		HeaderOrigin:    "key:someone-else", HeaderPath: "a,b",
	}
	env, err := Verify(testKey, testSubject, hdr, data)
	if err != nil || !sameEnvelope(env, old) {
		t.Fatalf("v2: %+v, %v", env, err)
	}
}

func TestLoopPath(t *testing.T) {
	env := Envelope{Hop: 17, Path: []string{"a", "b", "a"}}
	if got, want := loopPath(env, "b"), "… → a → b → a → b (17 hops)"; got != want {
		t.Errorf("loopPath = %q, want %q", got, want)
	}
	env = Envelope{Hop: 2, Path: []string{"a", "b"}}
	if got, want := loopPath(env, "c"), "a → b → c (2 hops)"; got != want {
		t.Errorf("loopPath = %q, want %q", got, want)
	}
}
