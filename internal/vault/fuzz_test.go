package vault

import (
	"bytes"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// FuzzDecodeRecord feeds decodeRecord what a damaged or hostile store
// could hold: it must never panic, and what it accepts must satisfy the
// invariants the vault relies on and encode again.
func FuzzDecodeRecord(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(time.Hour)
	good := record{Format: recordFormat, App: "shop", Name: "token", Current: 2, Versions: []versionRecord{
		{Version: 1, CreatedAt: now, ExpiresAt: &exp, WrappedKey: []byte("wk1"), Ciphertext: []byte("ct1")},
		{Version: 2, CreatedAt: now, WrappedKey: []byte("wk2"), NextKey: []byte("nk2"), Ciphertext: []byte("ct2")},
	}}
	enc, err := good.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"app":"shop","name":"a","current":1,"versions":[{"version":1,"created_at":"2026-01-01T00:00:00Z","wrapped_key":"AA==","ciphertext":"AA=="}]}`))
	f.Add([]byte(`{"format":1,"app":"shop","name":"a","current":1,"versions":[{"version":1,"wrapped_key":"AA==","ciphertext":"AA=="},{"version":1,"wrapped_key":"AA==","ciphertext":"AA=="}]}`))
	f.Add([]byte(`{"format":1,"extra":true}`))
	f.Add([]byte(`{"format":1} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if r.version(r.Current) == nil || CheckApp(r.App) != nil || CheckName(r.Name) != nil {
			t.Fatalf("accepted a record breaking an invariant: %+v", r)
		}
		again, err := r.encode()
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		if _, err := decodeRecord(again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		r.prune(now.Add(24 * time.Hour))
		_ = r.info()
	})
}

// FuzzDecodeCheck: the check record is read from the store too.
func FuzzDecodeCheck(f *testing.F) {
	f.Add([]byte(`{"format":1,"sealed":"AAAA"}`))
	f.Add([]byte(`{"format":1,"sealed":"AAAA","next":"AA=="}`))
	f.Add([]byte(`{"format":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCheck(b)
		if err == nil && len(c.Sealed) == 0 {
			t.Fatal("accepted a check record without a seal")
		}
	})
}

// FuzzOpenData feeds OpenData what a raw store could hold instead of a
// sealed value: it must refuse everything but what SealData wrote there.
func FuzzOpenData(f *testing.F) {
	store, kek := memkv.New(), newKEK(f)
	v, err := Open(f.Context(), Config{Store: store, KMS: kek})
	if err != nil {
		f.Fatal(err)
	}
	good, err := v.SealData(f.Context(), "shop", []byte("k"), []byte("value"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("value"))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := v.OpenData(t.Context(), "shop", []byte("k"), b)
		if err == nil && (!bytes.Equal(b, good) || string(got) != "value") {
			t.Fatalf("opened %x as %q", b, got)
		}
	})
}

func FuzzDecodeDataKey(f *testing.F) {
	f.Add([]byte(`{"format":1,"app":"shop","created_at":"2026-01-01T00:00:00Z","wrapped_key":"AAAA"}`))
	f.Add([]byte(`{"format":1,"app":"shop","wrapped_key":"AAAA","next_key":"AA=="}`))
	f.Add([]byte(`{"format":1,"app":"Shop!","wrapped_key":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeDataKey(b)
		if err == nil && (len(r.WrappedKey) == 0 || CheckApp(r.App) != nil) {
			t.Fatalf("accepted %q", b)
		}
	})
}
