package bus

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/telemetry"
)

// FuzzVerify feeds arbitrary headers, as anyone able to write into NATS
// could, to the envelope check: it must never panic, and nothing but a
// signature made with the key may verify.
func FuzzVerify(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	env := NewEnvelope("app/fn@v1", "0123456789abcdef", 1)
	env.Origin, env.Path = "jwt:https://id.test#a%\n", []string{"up", "fn"}
	env.Trace = telemetry.Span{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"}
	good := env.Headers(key, "aegis.ev.app.t", []byte("{}"))
	f.Add(good[HeaderProducer], good[HeaderRequestID], good[HeaderHop], good[HeaderEventID], good[HeaderEventTime], "", good[HeaderOrigin], good[HeaderPath], good[HeaderTraceparent], good[HeaderSignature], []byte("{}"))
	f.Add("", "", "", "", "", "", "", "", "", "", []byte(nil))
	f.Add("app/fn@v1", "id", "-1", "x", "-1", "root", "%", ",", "00-x", "v1=", []byte("x"))
	f.Add("a/b@c", "r", "99999999999999999999", "00112233445566778899aabbccddeeff", "999999999999999999", "", "key:%0a", "a,,b", "", "v2=AAAA", []byte("x"))
	f.Fuzz(func(t *testing.T, producer, reqID, hop, id, at, by, origin, path, traceparent, sig string, data []byte) {
		hdr := map[string]string{HeaderProducer: producer, HeaderRequestID: reqID, HeaderHop: hop,
			HeaderEventID: id, HeaderEventTime: at, HeaderReplayedBy: by, HeaderOrigin: origin, HeaderPath: path,
			HeaderTraceparent: traceparent, HeaderSignature: sig}
		env, err := Verify(key, "aegis.ev.app.t", hdr, data)
		if err != nil {
			return
		}
		// It verified: it must be exactly what signing those fields gives.
		want := env.Sign(key, "aegis.ev.app.t", data)
		switch {
		case env.ID == "":
			want = signatureV1 + base64.RawURLEncoding.EncodeToString(env.macV1(key, "aegis.ev.app.t", data))
		case strings.HasPrefix(sig, signatureV2):
			want = signatureV2 + base64.RawURLEncoding.EncodeToString(env.mac(key, "aegis.ev.app.t", data))
		case strings.HasPrefix(sig, signatureV3):
			want = signatureV3 + base64.RawURLEncoding.EncodeToString(env.macV3(key, "aegis.ev.app.t", data))
		}
		if want != sig {
			t.Fatalf("verified a signature the key did not make: %q", sig)
		}
		if env.Trace.TraceID != "" && env.Trace.Traceparent() != traceparent {
			t.Fatalf("verified trace %+v from %q", env.Trace, traceparent)
		}
		if env.Hop < 1 {
			t.Fatalf("verified hop %d", env.Hop)
		}
		if env.ID != "" && (!telemetry.IsID(env.ID) || env.Time.UnixMilli() <= 0) {
			t.Fatalf("verified id %q time %s", env.ID, env.Time)
		}
	})
}

// FuzzOriginAndPath: the origin and path headers of a version 3 envelope
// read back to exactly what wrote them, and nothing else reads at all.
func FuzzOriginAndPath(f *testing.F) {
	for _, s := range []string{"key:ci", "jwt:https://id.test#a%b\n", "%0A", "%0a", "%", "a,b", "", "up,save-entry"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if o, ok := decodeOrigin(h); ok && encodeOrigin(o) != h {
			t.Fatalf("origin header %q read as %q, which writes %q", h, o, encodeOrigin(o))
		}
		if o, ok := decodeOrigin(encodeOrigin(h)); len(h) <= maxOrigin && (!ok || o != h) {
			t.Fatalf("origin %q does not read back: %q %v", h, o, ok)
		}
		if p, ok := parsePath(h); ok && strings.Join(p, ",") != h {
			t.Fatalf("path header %q read as %v", h, p)
		}
	})
}
