package bus

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

var (
	testKey  = bytes.Repeat([]byte{7}, KeySize)
	otherKey = bytes.Repeat([]byte{8}, KeySize)
)

const testSubject = "aegis.ev.diary.image.saved"

func signedHeaders() (map[string]string, []byte) {
	data := []byte(`{"id":"42"}`)
	env := Envelope{Producer: "diary/save-entry@v3", RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Hop: 2}
	return env.Headers(testKey, testSubject, data), data
}

func TestVerifyAcceptsWhatSignWrote(t *testing.T) {
	hdr, data := signedHeaders()
	env, err := Verify(testKey, testSubject, hdr, data)
	if err != nil {
		t.Fatal(err)
	}
	want := Envelope{Producer: "diary/save-entry@v3", RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Hop: 2}
	if env != want {
		t.Errorf("envelope %+v, want %+v", env, want)
	}
	if !strings.HasPrefix(hdr[HeaderSignature], "v1=") {
		t.Errorf("signature %q lacks its version prefix", hdr[HeaderSignature])
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
		{name: "no version prefix", edit: func(h map[string]string) { h[HeaderSignature] = strings.TrimPrefix(h[HeaderSignature], "v1=") }, want: errSignatureVersion},
		{name: "unknown version", edit: func(h map[string]string) { h[HeaderSignature] = "v2=" + strings.TrimPrefix(h[HeaderSignature], "v1=") }, want: errSignatureVersion},
		{name: "truncated signature", edit: func(h map[string]string) { h[HeaderSignature] = h[HeaderSignature][:20] }, want: errSignatureMismatch},
		{name: "signature not base64url", edit: func(h map[string]string) { h[HeaderSignature] = "v1=" + strings.Repeat("!", 43) }, want: errSignatureMismatch},
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
