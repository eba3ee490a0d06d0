package bus

import (
	"bytes"
	"testing"
)

// FuzzVerify feeds arbitrary headers, as anyone able to write into NATS
// could, to the envelope check: it must never panic, and nothing but a
// signature made with the key may verify.
func FuzzVerify(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	good := Envelope{Producer: "app/fn@v1", RequestID: "0123456789abcdef", Hop: 1}.Headers(key, "aegis.ev.app.t", []byte("{}"))
	f.Add(good[HeaderProducer], good[HeaderRequestID], good[HeaderHop], good[HeaderSignature], []byte("{}"))
	f.Add("", "", "", "", []byte(nil))
	f.Add("app/fn@v1", "id", "-1", "v1=", []byte("x"))
	f.Add("a/b@c", "r", "99999999999999999999", "v2=AAAA", []byte("x"))
	f.Fuzz(func(t *testing.T, producer, reqID, hop, sig string, data []byte) {
		hdr := map[string]string{HeaderProducer: producer, HeaderRequestID: reqID, HeaderHop: hop, HeaderSignature: sig}
		env, err := Verify(key, "aegis.ev.app.t", hdr, data)
		if err != nil {
			return
		}
		// It verified: it must be exactly what signing those fields gives.
		if want := env.Sign(key, "aegis.ev.app.t", data); want != sig {
			t.Fatalf("verified a signature the key did not make: %q", sig)
		}
		if env.Hop < 1 {
			t.Fatalf("verified hop %d", env.Hop)
		}
	})
}
