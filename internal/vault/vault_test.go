package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKEK(t testing.TB) KMS {
	t.Helper()
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	k, err := NewLocalKMS(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type fixture struct {
	store *memkv.Store
	clock *clock
	kek   KMS
	v     *Vault
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: memkv.New(), clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, kek: newKEK(t)}
	f.v = f.open(t, f.kek)
	return f
}

func (f *fixture) open(t *testing.T, kek KMS) *Vault {
	t.Helper()
	v, err := Open(t.Context(), Config{Store: f.store, KMS: kek, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustRead(t *testing.T, v *Vault, app, name string, want string) {
	t.Helper()
	got, err := v.Read(t.Context(), app, name)
	if err != nil {
		t.Fatalf("read %s/%s: %v", app, name, err)
	}
	if string(got) != want {
		t.Fatalf("read %s/%s = %q, want %q", app, name, got, want)
	}
}

func TestSetRead(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Read(ctx, "shop", "token"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("read missing: %v, want ErrNotFound", err)
	}
	if ok, err := f.v.Exists(ctx, "shop", "token"); ok || err != nil {
		t.Fatalf("exists missing = %v, %v", ok, err)
	}
	info, err := f.v.Set(ctx, "shop", "token", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 1 || len(info.Versions) != 1 || !info.Versions[0].CreatedAt.Equal(f.clock.Now()) {
		t.Fatalf("info = %+v", info)
	}
	mustRead(t, f.v, "shop", "token", "s3cret")
	if ok, err := f.v.Exists(ctx, "shop", "token"); !ok || err != nil {
		t.Fatalf("exists = %v, %v", ok, err)
	}
	// Set again: a new version, the old one gone at once.
	info, err = f.v.Set(ctx, "shop", "token", []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 2 || len(info.Versions) != 1 {
		t.Fatalf("info after second set = %+v", info)
	}
	mustRead(t, f.v, "shop", "token", "other")
	if _, err := f.v.ReadVersion(ctx, "shop", "token", 1); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("read replaced version: %v", err)
	}
	// An empty value is a value.
	if _, err := f.v.Set(ctx, "shop", "empty", nil); err != nil {
		t.Fatal(err)
	}
	mustRead(t, f.v, "shop", "empty", "")
	// Another app's secret of the same name is another secret.
	if _, err := f.v.Read(ctx, "blog", "token"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("other app: %v", err)
	}
	// A second vault on the same store (another server) reads it.
	mustRead(t, f.open(t, f.kek), "shop", "token", "other")

	if err := f.v.Remove(ctx, "shop", "token"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Read(ctx, "shop", "token"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("read removed: %v", err)
	}
	if err := f.v.Remove(ctx, "shop", "token"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("remove removed: %v", err)
	}
	if _, err := f.v.Rotate(ctx, "shop", "token", []byte("x"), time.Hour); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("rotate missing: %v", err)
	}
}

func TestArguments(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct{ app, name string }{
		{"Shop", "a"}, {"", "a"}, {"shop", ""}, {"shop", ".a"}, {"shop", "a."}, {"shop", "a..b"},
		{"shop", "a/b"}, {"shop", "a b"}, {"shop", strings.Repeat("a", 65)}, {"shop", "ü"},
	} {
		if _, err := f.v.Set(ctx, tc.app, tc.name, []byte("v")); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("set %q/%q: %v, want ErrInvalidArgument", tc.app, tc.name, err)
		}
		if _, err := f.v.Read(ctx, tc.app, tc.name); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("read %q/%q: %v, want ErrInvalidArgument", tc.app, tc.name, err)
		}
	}
	for _, name := range []string{"a", "API_KEY", "db.password", "x-1.2_3", strings.Repeat("Z", 64)} {
		if _, err := f.v.Set(ctx, "shop", name, []byte("v")); err != nil {
			t.Errorf("set %q: %v", name, err)
		}
	}
	if _, err := f.v.Set(ctx, "shop", "big", make([]byte, MaxValueSize+1)); !errors.Is(err, aegis.ErrLimitExceeded) {
		t.Errorf("oversized value: %v", err)
	}
	if _, err := f.v.Set(ctx, "shop", "big", make([]byte, MaxValueSize)); err != nil {
		t.Errorf("value at the cap: %v", err)
	}
	if _, err := f.v.Rotate(ctx, "shop", "a", []byte("v"), -time.Second); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Errorf("negative overlap: %v", err)
	}
	if _, err := f.v.Rotate(ctx, "shop", "a", []byte("v"), MaxOverlap+time.Second); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Errorf("overlap above the cap: %v", err)
	}
	if _, err := f.v.ReadVersion(ctx, "shop", "a", 0); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Errorf("version 0: %v", err)
	}
}

func TestRotateOverlap(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Set(ctx, "shop", "token", []byte("one")); err != nil {
		t.Fatal(err)
	}
	start := f.clock.Now()
	info, err := f.v.Rotate(ctx, "shop", "token", []byte("two"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 2 || len(info.Versions) != 2 || !info.Versions[0].ExpiresAt.Equal(start.Add(time.Hour)) || !info.Versions[1].ExpiresAt.IsZero() {
		t.Fatalf("info = %+v", info)
	}
	mustRead(t, f.v, "shop", "token", "two")
	f.clock.Add(59 * time.Minute)
	for _, v := range []*Vault{f.v, f.open(t, f.kek)} {
		got, err := v.ReadVersion(ctx, "shop", "token", 1)
		if err != nil || string(got) != "one" {
			t.Fatalf("old version within the overlap = %q, %v", got, err)
		}
	}
	f.clock.Add(time.Minute)
	if _, err := f.v.ReadVersion(ctx, "shop", "token", 1); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("old version after the overlap: %v", err)
	}
	mustRead(t, f.v, "shop", "token", "two")
	// The access destroyed it in the store: the record holds version 2 alone.
	r := f.record(t, "shop", "token")
	if len(r.Versions) != 1 || r.Versions[0].Version != 2 {
		t.Fatalf("stored versions after the overlap: %+v", r.Versions)
	}
	list, err := f.v.List(ctx, "shop")
	if err != nil || len(list) != 1 || len(list[0].Versions) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func TestSweep(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, name := range []string{"a", "b"} {
		if _, err := f.v.Set(ctx, "shop", name, []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.v.Rotate(ctx, "shop", "a", []byte("2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := f.v.Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("sweep within the overlap = %d, %v", n, err)
	}
	f.clock.Add(time.Minute)
	if n, err := f.v.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep after the overlap = %d, %v", n, err)
	}
	if r := f.record(t, "shop", "a"); len(r.Versions) != 1 {
		t.Fatalf("versions after sweep: %d", len(r.Versions))
	}
}

func TestMaxVersions(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Set(ctx, "shop", "a", []byte("0")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < MaxVersions; i++ {
		if _, err := f.v.Rotate(ctx, "shop", "a", []byte{byte('0' + i)}, time.Hour); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := f.v.Rotate(ctx, "shop", "a", []byte("x"), time.Hour); !errors.Is(err, aegis.ErrLimitExceeded) {
		t.Fatalf("rotation past %d versions: %v", MaxVersions, err)
	}
	f.clock.Add(time.Hour)
	if _, err := f.v.Rotate(ctx, "shop", "a", []byte("x"), time.Hour); err != nil {
		t.Fatalf("rotation once the overlaps ended: %v", err)
	}
}

func (f *fixture) record(t *testing.T, app, name string) *record {
	t.Helper()
	b, ok := f.store.Contents()[secretKey(app, name)]
	if !ok {
		t.Fatalf("no record for %s/%s", app, name)
	}
	r, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) put(t *testing.T, r *record, key string) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	f.store.Set(key, b)
}

// TestFlippedByte flips every bit position's byte of every stored
// ciphertext (the value's and the wrapped data key's) and checks the read
// fails, never returning another value.
func TestFlippedByte(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Set(ctx, "shop", "token", []byte("the value")); err != nil {
		t.Fatal(err)
	}
	orig := f.record(t, "shop", "token")
	key := secretKey("shop", "token")
	fields := map[string]func(*versionRecord) []byte{
		"ciphertext":  func(v *versionRecord) []byte { return v.Ciphertext },
		"wrapped_key": func(v *versionRecord) []byte { return v.WrappedKey },
	}
	for field, get := range fields {
		n := len(get(&orig.Versions[0]))
		for i := range n {
			r := f.record(t, "shop", "token")
			get(&r.Versions[0])[i] ^= 0x01
			f.put(t, r, key)
			if got, err := f.v.Read(ctx, "shop", "token"); err == nil || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s byte %d flipped: read = %q, %v; want ErrCorrupt", field, i, got, err)
			}
			f.put(t, orig, key)
		}
	}
	mustRead(t, f.v, "shop", "token", "the value")

	// Any byte of the raw record flipped: an error or the right value.
	raw := f.store.Contents()[key]
	for i := range raw {
		b := bytes.Clone(raw)
		b[i] ^= 0x20
		f.store.Set(key, b)
		got, err := f.v.Read(ctx, "shop", "token")
		if err == nil && string(got) != "the value" {
			t.Fatalf("raw byte %d flipped: read %q", i, got)
		}
	}
	f.store.Set(key, raw)

	// The check record: a flipped byte stops Open.
	check := f.store.Contents()[checkKey]
	c, err := decodeCheck(check)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Sealed {
		d := *c
		d.Sealed = bytes.Clone(c.Sealed)
		d.Sealed[i] ^= 0x80
		b, _ := json.Marshal(d)
		f.store.Set(checkKey, b)
		if _, err := Open(ctx, Config{Store: f.store, KMS: f.kek}); !errors.Is(err, ErrWrongMasterKey) {
			t.Fatalf("check byte %d flipped: open = %v", i, err)
		}
	}
	f.store.Set(checkKey, []byte("{"))
	if _, err := Open(ctx, Config{Store: f.store, KMS: f.kek}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("malformed check record: open = %v", err)
	}
}

// TestSwapped moves envelopes between secrets, apps and versions: the
// associated data makes each of them fail.
func TestSwapped(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, s := range []struct{ app, name, value string }{
		{"shop", "a", "value of a"}, {"shop", "b", "value of b"}, {"blog", "a", "blog's a"},
	} {
		if _, err := f.v.Set(ctx, s.app, s.name, []byte(s.value)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.v.Rotate(ctx, "shop", "a", []byte("a v2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	a, b, blogA := f.record(t, "shop", "a"), f.record(t, "shop", "b"), f.record(t, "blog", "a")
	keyB := secretKey("shop", "b")

	cases := map[string]func(r *record){
		"a's envelope in b": func(r *record) {
			r.Versions[0].Ciphertext, r.Versions[0].WrappedKey = a.Versions[0].Ciphertext, a.Versions[0].WrappedKey
		},
		"a's ciphertext in b": func(r *record) { r.Versions[0].Ciphertext = a.Versions[0].Ciphertext },
		"a's key in b":        func(r *record) { r.Versions[0].WrappedKey = a.Versions[0].WrappedKey },
		"other app's envelope": func(r *record) {
			r.Versions[0].Ciphertext, r.Versions[0].WrappedKey = blogA.Versions[0].Ciphertext, blogA.Versions[0].WrappedKey
		},
		"wrapped key as ciphertext": func(r *record) { r.Versions[0].Ciphertext = r.Versions[0].WrappedKey },
	}
	for name, change := range cases {
		r := f.record(t, "shop", "b")
		change(r)
		f.put(t, r, keyB)
		if got, err := f.v.Read(ctx, "shop", "b"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: read = %q, %v; want ErrCorrupt", name, got, err)
		}
		f.put(t, b, keyB)
	}

	// Versions of one secret swapped: version 2 holding version 1's envelope.
	keyA := secretKey("shop", "a")
	r := f.record(t, "shop", "a")
	r.Versions[1].Ciphertext, r.Versions[1].WrappedKey = r.Versions[0].Ciphertext, r.Versions[0].WrappedKey
	f.put(t, r, keyA)
	if got, err := f.v.Read(ctx, "shop", "a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version swap: read = %q, %v", got, err)
	}
	// Renumbered: version 1's envelope claimed as version 2.
	r = f.record(t, "shop", "a")
	r.Versions = r.Versions[:1]
	r.Versions[0].Version, r.Current, r.Versions[0].ExpiresAt = 2, 2, nil
	f.put(t, r, keyA)
	if got, err := f.v.Read(ctx, "shop", "a"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("renumbered version: read = %q, %v", got, err)
	}
	f.put(t, a, keyA)

	// A whole record copied under another secret's key.
	f.store.Set(keyB, f.store.Contents()[keyA])
	if got, err := f.v.Read(ctx, "shop", "b"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("record under another key: read = %q, %v", got, err)
	}
	// Relabelled as b: the associated data still says a.
	r = f.record(t, "shop", "a")
	r.Name = "b"
	f.put(t, r, keyB)
	if got, err := f.v.Read(ctx, "shop", "b"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("relabelled record: read = %q, %v", got, err)
	}
	mustRead(t, f.v, "shop", "a", "a v2")
}

func TestWrongMasterKey(t *testing.T) {
	f := newFixture(t)
	if _, err := f.v.Set(t.Context(), "shop", "a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Config{Store: f.store, KMS: newKEK(t)})
	if !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("open with another key: %v", err)
	}
	for _, want := range []string{"does not open", "--master-key-file", "AEGIS_MASTER_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := Open(t.Context(), Config{Store: f.store}); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Fatalf("open without a key: %v", err)
	}
}

func TestRotateMaster(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	values := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("s%d", i)
		values[name] = "value " + name
		if _, err := f.v.Set(ctx, "shop", name, []byte("old "+name)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Rotate(ctx, "shop", name, []byte(values[name]), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	other := f.open(t, f.kek) // another server, still on the old key

	// Readers hammer the vault while it rotates.
	newK := newKEK(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("s%d", (g+i)%5)
				got, err := f.v.Read(ctx, "shop", name)
				if err != nil || string(got) != values[name] {
					errs <- fmt.Errorf("read %s during rotation = %q, %v", name, got, err)
					return
				}
			}
		})
	}
	n, err := f.v.RotateMaster(ctx, newK)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err != nil || n != 10 {
		t.Fatalf("rotate master = %d, %v; want 10 data keys", n, err)
	}
	for name, want := range values {
		mustRead(t, f.v, "shop", name, want)
		if got, err := f.v.ReadVersion(ctx, "shop", name, 1); err != nil || string(got) != "old "+name {
			t.Fatalf("old version after rotate-master = %q, %v", got, err)
		}
	}
	// No record keeps a key wrapped for the old KEK.
	for name := range values {
		for _, vr := range f.record(t, "shop", name).Versions {
			if vr.NextKey != nil {
				t.Fatalf("%s: a second wrapping left behind", name)
			}
			if _, err := unwrapKey(ctx, f.kek, vr.WrappedKey, "shop", name, vr.Version); err == nil {
				t.Fatalf("%s: the old key still unwraps version %d", name, vr.Version)
			}
		}
	}
	if _, err := Open(ctx, Config{Store: f.store, KMS: f.kek}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("open with the old key after rotate-master: %v", err)
	}
	if _, err := other.Read(ctx, "shop", "s1"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a server still on the old key reads: %v", err)
	}
	if _, err := other.Set(ctx, "shop", "s1", []byte("x")); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("a server still on the old key writes: %v", err)
	}
	restarted := f.open(t, newK)
	mustRead(t, restarted, "shop", "s3", values["s3"])
	if _, err := restarted.Set(ctx, "shop", "new", []byte("after")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, f.v, "shop", "new", "after")
	if _, err := f.v.RotateMaster(ctx, newK); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Fatalf("rotate to the current key: %v", err)
	}
}

// TestRotateMasterInterrupted leaves a rotation after its first phase and
// checks both keys' servers behave as documented.
func TestRotateMasterInterrupted(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.v.Set(ctx, "shop", "a", []byte("va")); err != nil {
		t.Fatal(err)
	}
	newK := newKEK(t)
	// Phase one by hand: the announcement and the second wrapping.
	c, _ := decodeCheck(f.store.Contents()[checkKey])
	next, _ := newK.Encrypt(ctx, checkPlaintext, checkAD)
	b, _ := json.Marshal(checkRecord{Format: recordFormat, Sealed: c.Sealed, Next: next})
	f.store.Set(checkKey, b)
	r := f.record(t, "shop", "a")
	nk, err := rewrap(ctx, f.kek, newK, r.Versions[0].WrappedKey, "shop", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Versions[0].NextKey = nk
	f.put(t, r, secretKey("shop", "a"))

	if _, err := Open(ctx, Config{Store: f.store, KMS: newK}); !errors.Is(err, ErrWrongMasterKey) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("open with the new key mid-rotation: %v", err)
	}
	old := f.open(t, f.kek)
	mustRead(t, old, "shop", "a", "va")
	if _, err := old.Set(ctx, "shop", "b", []byte("x")); !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("write mid-rotation: %v", err)
	}
	// Run again from the old key: it finishes.
	if n, err := old.RotateMaster(ctx, newK); err != nil || n != 1 {
		t.Fatalf("rotate again = %d, %v", n, err)
	}
	mustRead(t, f.open(t, newK), "shop", "a", "va")
}

// TestConcurrentWriters: two servers setting one secret at once lose no
// version and never corrupt the record.
func TestConcurrentWriters(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	vs := []*Vault{f.v, f.open(t, f.kek)}
	var wg sync.WaitGroup
	const each = 10
	for i := range 4 {
		wg.Go(func() {
			for j := range each {
				if _, err := vs[i%2].Set(ctx, "shop", "a", fmt.Appendf(nil, "%d-%d", i, j)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r := f.record(t, "shop", "a")
	if r.Current != 4*each {
		t.Fatalf("current version = %d, want %d", r.Current, 4*each)
	}
	if _, err := f.v.Read(ctx, "shop", "a"); err != nil {
		t.Fatal(err)
	}
}

// TestNoValueAnywhere: a marker value appears nowhere but in what Read
// returns: not in the store (plain, base64, hex), Info, List or an error.
func TestNoValueAnywhere(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	marker := "MARKER-" + rand.Text()
	forms := []string{marker, base64.StdEncoding.EncodeToString([]byte(marker)), hex.EncodeToString([]byte(marker)),
		base64.StdEncoding.EncodeToString([]byte(marker))[:20]}
	leaks := func(what, s string) {
		t.Helper()
		for _, form := range forms {
			if strings.Contains(s, form) {
				t.Errorf("%s holds the value (%q)", what, form)
			}
		}
	}
	info, err := f.v.Set(ctx, "shop", "a", []byte(marker))
	if err != nil {
		t.Fatal(err)
	}
	info2, err := f.v.Rotate(ctx, "shop", "a", []byte(marker+"2"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.v.List(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal([]any{info, info2, list})
	leaks("Info and List", string(js)+fmt.Sprintf("%+v %+v %+v", info, info2, list))
	for k, v := range f.store.Contents() {
		leaks("store key "+k, k+string(v))
	}
	// Errors: oversized, tampered, wrong version.
	_, err1 := f.v.Set(ctx, "shop", "a", []byte(strings.Repeat(marker, MaxValueSize/len(marker)+1)))
	r := f.record(t, "shop", "a")
	r.Versions[1].Ciphertext[7] ^= 1
	f.put(t, r, secretKey("shop", "a"))
	_, err2 := f.v.Read(ctx, "shop", "a")
	_, err3 := f.v.ReadVersion(ctx, "shop", "a", 9)
	for i, err := range []error{err1, err2, err3} {
		if err == nil {
			t.Fatalf("error %d: nil", i)
		}
		leaks(fmt.Sprintf("error %d", i), err.Error())
	}
}
