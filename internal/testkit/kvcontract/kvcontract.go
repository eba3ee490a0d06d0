// Package kvcontract is the contract of a key-value store as the packages
// declaring a small store interface (auth, registry, gateway) rely on it:
// the errors callers test, revisions for compare-and-swap, create-once
// under contention, prefix listings, key TTLs. One suite, run against every
// implementation (as Litestream runs one against each replica client): the
// JetStream bucket in internal/jetstream's contract tests (embedded, over a
// URL, and on AEGIS_TEST_NATS_URL when set) and testkit/memkv, so that a
// unit test on memkv sees what the real bucket would do.
//
// The cases are what the JetStream bucket does, observed, not what an
// ideal store would: Update at revision 0 creates a key never written but
// not a deleted one, because a delete leaves a marker with its own
// revision. Change a case only with the bucket's behaviour in hand.
package kvcontract

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

// Store is the key-value store under test: the union of the store
// interfaces the packages above declare.
type Store interface {
	// Get returns the value and revision of key, or aegis.ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Put writes key and returns its new revision.
	Put(ctx context.Context, key string, v []byte) (uint64, error)
	// Create writes key only if it has no value, else aegis.ErrConflict.
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	// Update writes key only if its revision is rev, else aegis.ErrConflict.
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	// Delete removes key; a missing key is no error.
	Delete(ctx context.Context, key string) error
	// Keys lists, sorted, the keys starting with prefix; none is an empty
	// slice.
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// TTLStore is a Store whose keys may have their own time to live.
type TTLStore interface {
	Store
	// CreateTTL is Create for a key that expires ttl after it is written.
	CreateTTL(ctx context.Context, key string, v []byte, ttl time.Duration) (uint64, error)
}

// Target is one implementation under test.
type Target struct {
	// Open returns an empty store for one case.
	Open func(t *testing.T) Store
	// OpenTTL returns an empty store whose keys may have their own TTL,
	// for the KeyTTL case; nil when Skip names that case.
	OpenTTL func(t *testing.T) TTLStore
	// Skip names the cases the implementation deliberately does not keep,
	// each with the reason, which the skip reports. A name that is not a
	// case fails the suite, so a skip cannot outlive the case.
	Skip map[string]string
}

// Cases are the names of the suite's cases, for Target.Skip.
var Cases = []string{"ReadWrite", "Create", "Update", "Delete", "InvalidKeys", "Keys", "Copies",
	"ConcurrentCreate", "ConcurrentUpdate", "KeyTTL"}

// Run runs every case against tg, each as a subtest on a store of its own.
func Run(t *testing.T, tg Target) {
	for name := range tg.Skip {
		if !slices.Contains(Cases, name) {
			t.Fatalf("Skip names %q, which is not a case (%v)", name, Cases)
		}
	}
	cases := map[string]func(*testing.T, Store){
		"ReadWrite": testReadWrite, "Create": testCreate, "Update": testUpdate, "Delete": testDelete,
		"InvalidKeys": testInvalidKeys, "Keys": testKeys, "Copies": testCopies,
		"ConcurrentCreate": testConcurrentCreate, "ConcurrentUpdate": testConcurrentUpdate,
	}
	for _, name := range Cases {
		t.Run(name, func(t *testing.T) {
			if reason, ok := tg.Skip[name]; ok {
				t.Skip(reason)
			}
			if name == "KeyTTL" {
				if tg.OpenTTL == nil {
					t.Fatal("no OpenTTL, and Skip does not name KeyTTL")
				}
				testKeyTTL(t, tg.OpenTTL(t))
				return
			}
			cases[name](t, tg.Open(t))
		})
	}
}

func testReadWrite(t *testing.T, s Store) {
	ctx := testCtx(t)
	_, rev, err := s.Get(ctx, "missing")
	isErr(t, err, aegis.ErrNotFound)
	equal(t, uint64(0), rev)

	r1, err := s.Put(ctx, "a", []byte("1"))
	noErr(t, err)
	v, rev, err := s.Get(ctx, "a")
	noErr(t, err)
	equal(t, "1", string(v))
	equal(t, r1, rev)

	// Every write gets a revision above any before it, whatever the key.
	r2, err := s.Put(ctx, "b", []byte("2"))
	noErr(t, err)
	r3, err := s.Put(ctx, "a", []byte("3"))
	noErr(t, err)
	if r1 == 0 || r2 <= r1 || r3 <= r2 {
		t.Fatalf("revisions %d, %d, %d: want growing and above 0", r1, r2, r3)
	}
	v, rev, err = s.Get(ctx, "a")
	noErr(t, err)
	equal(t, "3", string(v))
	equal(t, r3, rev)

	// An empty value is a value: the key exists.
	_, err = s.Put(ctx, "empty", nil)
	noErr(t, err)
	v, _, err = s.Get(ctx, "empty")
	noErr(t, err)
	equal(t, 0, len(v))
	_, err = s.Create(ctx, "empty", []byte("x"))
	isErr(t, err, aegis.ErrConflict)
}

func testCreate(t *testing.T, s Store) {
	ctx := testCtx(t)
	r1, err := s.Create(ctx, "a", []byte("1"))
	noErr(t, err)
	_, err = s.Create(ctx, "a", []byte("x"))
	isErr(t, err, aegis.ErrConflict)
	v, rev, err := s.Get(ctx, "a")
	noErr(t, err)
	equal(t, "1", string(v)) // the refused Create changed nothing
	equal(t, r1, rev)

	// A Put makes a key exist as much as a Create does.
	_, err = s.Put(ctx, "b", []byte("1"))
	noErr(t, err)
	_, err = s.Create(ctx, "b", []byte("x"))
	isErr(t, err, aegis.ErrConflict)

	// A deleted key can be created again.
	noErr(t, s.Delete(ctx, "a"))
	r2, err := s.Create(ctx, "a", []byte("again"))
	noErr(t, err)
	if r2 <= r1 {
		t.Fatalf("revision did not grow: %d then %d", r1, r2)
	}
}

func testUpdate(t *testing.T, s Store) {
	ctx := testCtx(t)
	r1, err := s.Put(ctx, "a", []byte("1"))
	noErr(t, err)
	_, err = s.Update(ctx, "a", []byte("x"), r1+100)
	isErr(t, err, aegis.ErrConflict)
	r2, err := s.Update(ctx, "a", []byte("2"), r1)
	noErr(t, err)
	if r2 <= r1 {
		t.Fatalf("revision did not grow: %d then %d", r1, r2)
	}
	_, err = s.Update(ctx, "a", []byte("3"), r1) // stale revision
	isErr(t, err, aegis.ErrConflict)
	v, rev, err := s.Get(ctx, "a")
	noErr(t, err)
	equal(t, "2", string(v))
	equal(t, r2, rev)

	// Revision 0 means "no value ever": on a key never written, Update at
	// 0 creates it; on any other, it conflicts.
	_, err = s.Update(ctx, "a", []byte("x"), 0)
	isErr(t, err, aegis.ErrConflict)
	r3, err := s.Update(ctx, "never", []byte("1"), 0)
	noErr(t, err)
	v, rev, err = s.Get(ctx, "never")
	noErr(t, err)
	equal(t, "1", string(v))
	equal(t, r3, rev)

	// A deleted key keeps a revision of its own (the delete's): neither 0
	// nor the revision before the delete updates it. Callers Create it.
	noErr(t, s.Delete(ctx, "a"))
	_, err = s.Update(ctx, "a", []byte("x"), 0)
	isErr(t, err, aegis.ErrConflict)
	_, err = s.Update(ctx, "a", []byte("x"), r2)
	isErr(t, err, aegis.ErrConflict)
	_, _, err = s.Get(ctx, "a")
	isErr(t, err, aegis.ErrNotFound)
}

func testDelete(t *testing.T, s Store) {
	ctx := testCtx(t)
	_, err := s.Put(ctx, "a", []byte("1"))
	noErr(t, err)
	noErr(t, s.Delete(ctx, "a"))
	_, rev, err := s.Get(ctx, "a")
	isErr(t, err, aegis.ErrNotFound)
	equal(t, uint64(0), rev)
	keys, err := s.Keys(ctx, "")
	noErr(t, err)
	equal(t, []string{}, keys)

	// Deleting again, or a key never written, is no error: retries are
	// harmless.
	noErr(t, s.Delete(ctx, "a"))
	noErr(t, s.Delete(ctx, "never-there"))
}

// testInvalidKeys: keys are subject tokens: letters, digits and "-/_=.",
// with dots only between non-empty tokens. Every call refuses another key
// before it reaches the store.
func testInvalidKeys(t *testing.T, s Store) {
	ctx := testCtx(t)
	for _, key := range []string{"", "bad key", "a..b", ".a", "a.", "a*", "a>", "ключ", "a\nb"} {
		_, _, err := s.Get(ctx, key)
		isErr(t, err, aegis.ErrInvalidArgument)
		_, err = s.Put(ctx, key, nil)
		isErr(t, err, aegis.ErrInvalidArgument)
		_, err = s.Create(ctx, key, nil)
		isErr(t, err, aegis.ErrInvalidArgument)
		_, err = s.Update(ctx, key, nil, 0)
		isErr(t, err, aegis.ErrInvalidArgument)
		isErr(t, s.Delete(ctx, key), aegis.ErrInvalidArgument)
	}
	for _, key := range []string{"a", "A-z_0=9", "app.users.alice", "sha256-ab/cd", "x.y.z"} {
		_, err := s.Put(ctx, key, []byte(key))
		noErr(t, err)
	}
	keys, err := s.Keys(ctx, "")
	noErr(t, err)
	equal(t, []string{"A-z_0=9", "a", "app.users.alice", "sha256-ab/cd", "x.y.z"}, keys)
	// A prefix no key could have lists nothing, rather than failing.
	keys, err = s.Keys(ctx, "bad prefix")
	noErr(t, err)
	equal(t, []string{}, keys)
}

func testKeys(t *testing.T, s Store) {
	ctx := testCtx(t)
	keys, err := s.Keys(ctx, "")
	noErr(t, err)
	equal(t, []string{}, keys)

	for _, k := range []string{"users.bob", "users.alice", "users.al", "userx", "apps.one", "users.alice.photo"} {
		_, err := s.Put(ctx, k, []byte(k))
		noErr(t, err)
	}
	_, err = s.Put(ctx, "users.bob", []byte("again")) // listed once
	noErr(t, err)
	noErr(t, s.Delete(ctx, "apps.one"))

	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"users.al", "users.alice", "users.alice.photo", "users.bob", "userx"}},
		{"users.", []string{"users.al", "users.alice", "users.alice.photo", "users.bob"}},
		{"users.al", []string{"users.al", "users.alice", "users.alice.photo"}},
		{"users.alice.", []string{"users.alice.photo"}},
		{"user", []string{"users.al", "users.alice", "users.alice.photo", "users.bob", "userx"}},
		{"apps", []string{}},
		{"nothing.", []string{}},
	} {
		keys, err := s.Keys(ctx, tc.prefix)
		noErr(t, err)
		equal(t, tc.want, keys)
	}
}

// testCopies: the store keeps what was written, not the caller's slice,
// and hands out values the caller may change.
func testCopies(t *testing.T, s Store) {
	ctx := testCtx(t)
	in := []byte("abc")
	_, err := s.Put(ctx, "a", in)
	noErr(t, err)
	in[0] = 'X'
	out, _, err := s.Get(ctx, "a")
	noErr(t, err)
	equal(t, "abc", string(out))
	out[0] = 'Y'
	again, _, err := s.Get(ctx, "a")
	noErr(t, err)
	equal(t, "abc", string(again))
}

// testConcurrentCreate: of many Creates of one key at once, exactly one
// succeeds; the replay records (auth.SeenStore) rest on this.
func testConcurrentCreate(t *testing.T, s Store) {
	ctx := testCtx(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.Create(ctx, "once", []byte(strconv.Itoa(i))) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("Creates %d and %d both succeeded", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, aegis.ErrConflict):
			t.Fatalf("Create %d: %v, want a conflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no Create succeeded")
	}
	v, _, err := s.Get(ctx, "once")
	noErr(t, err)
	equal(t, strconv.Itoa(won), string(v))
}

// testConcurrentUpdate: read-modify-write loops on Update lose no write.
func testConcurrentUpdate(t *testing.T, s Store) {
	ctx := testCtx(t)
	_, err := s.Put(ctx, "counter", []byte("0"))
	noErr(t, err)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if err := increment(ctx, s, "counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, _, err := s.Get(ctx, "counter")
	noErr(t, err)
	equal(t, strconv.Itoa(workers*each), string(v))
}

func increment(ctx context.Context, s Store, key string) error {
	for {
		v, rev, err := s.Get(ctx, key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return err
		}
		_, err = s.Update(ctx, key, []byte(strconv.Itoa(n+1)), rev)
		if errors.Is(err, aegis.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update %s at %d: %w", key, rev, err)
		}
		return nil
	}
}

// testKeyTTL: a key created with its own TTL outlives neither it nor the
// store's, and is refused as a conflict while it lives.
func testKeyTTL(t *testing.T, s TTLStore) {
	ctx := testCtx(t)
	_, err := s.CreateTTL(ctx, "short", []byte("1"), time.Second)
	noErr(t, err)
	_, err = s.CreateTTL(ctx, "long", []byte("1"), time.Hour)
	noErr(t, err)
	_, err = s.CreateTTL(ctx, "short", []byte("2"), time.Second)
	isErr(t, err, aegis.ErrConflict)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err = s.Get(ctx, "short")
		if errors.Is(err, aegis.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with a 1s TTL still there after 10s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _, err = s.Get(ctx, "long")
	noErr(t, err)
	// Once expired, the key can be created again.
	_, err = s.CreateTTL(ctx, "short", []byte("3"), time.Second)
	noErr(t, err)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func isErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func equal[T any](t *testing.T, want, got T) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("want %#v, got %#v", want, got)
	}
}
