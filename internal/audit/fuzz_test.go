package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
)

// FuzzParseExport: an export file is untrusted bytes. Parsing never
// panics, and what it returns verifies or names a problem, never panics;
// a file that verifies still does after it is written out again.
func FuzzParseExport(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	l, err := Open(context.Background(), Config{Stream: &memStream{}, Key: key, CheckpointEvery: 2})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if _, err := l.Append(context.Background(), adminRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := WriteExport(&buf, pub, func(y func(Record) error) error { return l.Each(context.Background(), 1, y) }); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"aegis-audit/1","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}` + "\n{}\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, recs, err := ParseExport(bytes.NewReader(data))
		if err != nil {
			return
		}
		k, ok := ParsePublicKey(h.PublicKey)
		if !ok {
			t.Fatalf("accepted header with a bad key %q", h.PublicKey)
		}
		if _, err := Verify(recs, k); err != nil {
			return
		}
		var out bytes.Buffer
		err = WriteExport(&out, k, func(y func(Record) error) error {
			for _, r := range recs {
				if err := y(r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		_, again, err := ParseExport(&out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(again, k); err != nil {
			t.Fatalf("a verified export no longer verifies after a round trip: %v", err)
		}
	})
}
