package vault

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
)

func TestSealDataRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	where := []byte("table\x00entries\x00k1")
	ct, err := f.v.SealData(ctx, "shop", where, []byte("marker-kv-value"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("marker")) || len(ct) != len("marker-kv-value")+DataOverhead {
		t.Fatalf("sealed = %q (%d bytes)", ct, len(ct))
	}
	for name, s := range f.store.Contents() {
		if bytes.Contains(s, []byte("marker")) {
			t.Fatalf("store key %s holds the plaintext", name)
		}
	}
	got, err := f.v.OpenData(ctx, "shop", where, ct)
	if err != nil || string(got) != "marker-kv-value" {
		t.Fatalf("open = %q, %v", got, err)
	}
	// Another server on the same store reads the same key.
	if got, err := f.open(t, f.kek).OpenData(ctx, "shop", where, ct); err != nil || string(got) != "marker-kv-value" {
		t.Fatalf("open on another vault = %q, %v", got, err)
	}

	refused := map[string]func() ([]byte, error){
		"another key":   func() ([]byte, error) { return f.v.OpenData(ctx, "shop", []byte("table\x00entries\x00k2"), ct) },
		"another app":   func() ([]byte, error) { return f.v.OpenData(ctx, "blog", where, ct) },
		"in the clear":  func() ([]byte, error) { return f.v.OpenData(ctx, "shop", where, []byte("marker-kv-value")) },
		"empty":         func() ([]byte, error) { return f.v.OpenData(ctx, "shop", where, nil) },
		"a bad app":     func() ([]byte, error) { return f.v.OpenData(ctx, "Shop!", where, ct) },
		"truncated tag": func() ([]byte, error) { return f.v.OpenData(ctx, "shop", where, ct[:len(ct)-1]) },
	}
	for i := range ct {
		flipped := bytes.Clone(ct)
		flipped[i] ^= 0x01
		refused[fmt.Sprintf("byte %d flipped", i)] = func() ([]byte, error) { return f.v.OpenData(ctx, "shop", where, flipped) }
	}
	for name, open := range refused {
		if got, err := open(); err == nil {
			t.Errorf("%s: opened as %q", name, got)
		}
	}
	if _, err := f.v.OpenData(ctx, "shop", where, ct[:10]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a damaged value: %v, want ErrCorrupt", err)
	}
}

// Servers that first write for an app at the same moment end up with one
// data key: what any of them sealed, all of them open.
func TestDataKeyCreatedOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	vaults := []*Vault{f.v, f.open(t, f.kek), f.open(t, f.kek), f.open(t, f.kek)}
	sealed := make([][]byte, len(vaults))
	var wg sync.WaitGroup
	for i, v := range vaults {
		wg.Go(func() {
			ct, err := v.SealData(ctx, "shop", []byte("o"), []byte(fmt.Sprint("from ", i)))
			if err != nil {
				t.Error(err)
			}
			sealed[i] = ct
		})
	}
	wg.Wait()
	for i, ct := range sealed {
		for _, v := range vaults {
			if got, err := v.OpenData(ctx, "shop", []byte("o"), ct); err != nil || string(got) != fmt.Sprint("from ", i) {
				t.Fatalf("value sealed by server %d: %q, %v", i, got, err)
			}
		}
	}
	keys := 0
	for k := range f.store.Contents() {
		if len(k) > len(dataKeyPrefix) && k[:len(dataKeyPrefix)] == dataKeyPrefix {
			keys++
		}
	}
	if keys != 1 {
		t.Fatalf("%d data key records for one app", keys)
	}
}

func TestRotateMasterRewrapsDataKeys(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var sealed [][]byte
	for _, app := range []string{"shop", "blog"} {
		ct, err := f.v.SealData(ctx, app, []byte("obj"), []byte("marker "+app))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, ct)
	}
	if _, err := f.v.Set(ctx, "shop", "token", []byte("s")); err != nil {
		t.Fatal(err)
	}
	newK := newKEK(t)
	n, err := f.v.RotateMaster(ctx, newK)
	if err != nil || n != 3 {
		t.Fatalf("rotate master = %d, %v; want 3 (one secret version, two data keys)", n, err)
	}
	fresh := f.open(t, newK) // a server restarted with the new key
	for i, app := range []string{"shop", "blog"} {
		if got, err := fresh.OpenData(ctx, app, []byte("obj"), sealed[i]); err != nil || string(got) != "marker "+app {
			t.Fatalf("%s after rotate-master: %q, %v", app, got, err)
		}
		r, err := decodeDataKey(f.store.Contents()[dataKeyPrefix+app])
		if err != nil {
			t.Fatal(err)
		}
		if r.NextKey != nil {
			t.Fatalf("%s: a second wrapping left behind", app)
		}
		if _, err := unwrapKey(ctx, f.kek, r.WrappedKey, app, "", 0); err == nil {
			t.Fatalf("%s: the old master key still unwraps the data key", app)
		}
	}
}

// A data key record copied under another app's name does not open: the
// wrapping is bound to its app.
func TestDataKeyBoundToItsApp(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.SealData(ctx, "shop", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	rec := f.store.Contents()[dataKeyPrefix+"shop"]
	forged := bytes.Replace(rec, []byte(`"app":"shop"`), []byte(`"app":"blog"`), 1)
	if _, err := f.store.Create(ctx, dataKeyPrefix+"blog", forged); err != nil {
		t.Fatal(err)
	}
	if _, err := f.open(t, f.kek).SealData(ctx, "blog", nil, []byte("y")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("seal with a data key moved from another app: %v, want ErrCorrupt", err)
	}
}

// keyID is the Tink key id a ciphertext names (after its version byte).
func keyID(ct []byte) string { return fmt.Sprintf("%x", ct[1:5]) }

func TestRotateDataKey(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	other := f.open(t, f.kek) // another server, which cached the key before
	if _, err := f.v.RotateDataKey(ctx, "shop"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("rotate before any data: %v", err)
	}
	before, err := f.v.SealData(ctx, "shop", []byte("k"), []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.OpenData(ctx, "shop", []byte("k"), before); err != nil {
		t.Fatal(err)
	}
	info, err := f.v.RotateDataKey(ctx, "shop")
	if err != nil || info.Keys != 2 || info.RotatedAt.IsZero() {
		t.Fatalf("rotate = %+v, %v", info, err)
	}
	after, err := f.v.SealData(ctx, "shop", []byte("k"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if keyID(after) == keyID(before) {
		t.Fatal("after the rotation, data is still sealed by the old key")
	}
	for _, v := range []*Vault{f.v, other, f.open(t, f.kek)} {
		if got, err := v.OpenData(ctx, "shop", []byte("k"), before); err != nil || string(got) != "old" {
			t.Fatalf("what the old key sealed: %q, %v", got, err)
		}
		// other meets a value the new key sealed and reads the keyset again.
		if got, err := v.OpenData(ctx, "shop", []byte("k"), after); err != nil || string(got) != "new" {
			t.Fatalf("what the new key sealed: %q, %v", got, err)
		}
	}
	// A server that has not met such a value switches on its sweep.
	third := f.open(t, f.kek)
	if _, err := third.SealData(ctx, "shop", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.RotateDataKey(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if n, err := third.RefreshDataKeys(ctx); n != 1 || err != nil {
		t.Fatalf("refresh = %d, %v", n, err)
	}
	a, _ := f.v.SealData(ctx, "shop", nil, []byte("x"))
	b, _ := third.SealData(ctx, "shop", nil, []byte("x"))
	if keyID(a) != keyID(b) {
		t.Fatal("after a refresh, two servers seal with different keys")
	}
	// rotate-master re-wraps the whole keyset: every key still opens.
	newK := newKEK(t)
	if _, err := f.v.RotateMaster(ctx, newK); err != nil {
		t.Fatal(err)
	}
	fresh := f.open(t, newK)
	for _, ct := range [][]byte{before, after} {
		if _, err := fresh.OpenData(ctx, "shop", []byte("k"), ct); err != nil {
			t.Fatalf("after rotate-master: %v", err)
		}
	}
}

func TestRotateDataKeyBounded(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.SealData(ctx, "shop", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < MaxDataKeys; i++ {
		if _, err := f.v.RotateDataKey(ctx, "shop"); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if _, err := f.v.RotateDataKey(ctx, "shop"); !errors.Is(err, aegis.ErrLimitExceeded) {
		t.Fatalf("rotation past %d keys: %v", MaxDataKeys, err)
	}
}
