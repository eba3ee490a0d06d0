package bus

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/aegis-platform/aegis/internal/telemetry"
)

// FuzzVerify feeds arbitrary headers, as anyone able to write into NATS
// could, to the envelope check: it must never panic, and nothing but a
// signature made with the key may verify.
func FuzzVerify(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	good := NewEnvelope("app/fn@v1", "0123456789abcdef", 1).Headers(key, "aegis.ev.app.t", []byte("{}"))
	f.Add(good[HeaderProducer], good[HeaderRequestID], good[HeaderHop], good[HeaderEventID], good[HeaderEventTime], "", good[HeaderSignature], []byte("{}"))
	f.Add("", "", "", "", "", "", "", []byte(nil))
	f.Add("app/fn@v1", "id", "-1", "x", "-1", "root", "v1=", []byte("x"))
	f.Add("a/b@c", "r", "99999999999999999999", "00112233445566778899aabbccddeeff", "999999999999999999", "", "v2=AAAA", []byte("x"))
	f.Fuzz(func(t *testing.T, producer, reqID, hop, id, at, by, sig string, data []byte) {
		hdr := map[string]string{HeaderProducer: producer, HeaderRequestID: reqID, HeaderHop: hop,
			HeaderEventID: id, HeaderEventTime: at, HeaderReplayedBy: by, HeaderSignature: sig}
		env, err := Verify(key, "aegis.ev.app.t", hdr, data)
		if err != nil {
			return
		}
		// It verified: it must be exactly what signing those fields gives.
		want := env.Sign(key, "aegis.ev.app.t", data)
		if env.ID == "" {
			want = signatureV1 + base64.RawURLEncoding.EncodeToString(env.macV1(key, "aegis.ev.app.t", data))
		}
		if want != sig {
			t.Fatalf("verified a signature the key did not make: %q", sig)
		}
		if env.Hop < 1 {
			t.Fatalf("verified hop %d", env.Hop)
		}
		if env.ID != "" && (!telemetry.IsID(env.ID) || env.Time.UnixMilli() <= 0) {
			t.Fatalf("verified id %q time %s", env.ID, env.Time)
		}
	})
}
