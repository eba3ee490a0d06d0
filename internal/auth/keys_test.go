package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// memStore is the tests' Store: an in-memory map keeping the bucket's
// contract.
type memStore = memkv.Store

func newMemStore() *memStore { return memkv.New() }

// fakeClock is a settable clock for cache TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestKeys(t testing.TB) (*Keys, *memStore, *fakeClock) {
	t.Helper()
	s := newMemStore()
	clk := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	k := NewKeys(s)
	k.now = clk.Now
	return k, s, clk
}

func mustCreate(t testing.TB, k *Keys, name string) string {
	t.Helper()
	key, err := k.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return key
}

// wantUnauthenticated checks err is the one sentinel with the given reason.
func wantUnauthenticated(t *testing.T, id *Identity, err error, reason string) {
	t.Helper()
	if id != nil {
		t.Fatalf("got identity %+v, want none", id)
	}
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("err = %v, want ErrUnauthenticated", err)
	}
	if got := Reason(err); got != reason {
		t.Fatalf("Reason = %q, want %q", got, reason)
	}
	if err.Error() != "unauthenticated" {
		t.Fatalf("error text %q says more than the sentinel", err.Error())
	}
}

func TestCreateVerify(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	key := mustCreate(t, k, "ci-deploy")

	if !strings.HasPrefix(key, "aegis_") || len(key) != keyLen {
		t.Fatalf("key %q: want aegis_ prefix and length %d", key, keyLen)
	}
	id, err := k.Verify(ctx, key)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.KeyName != "ci-deploy" {
		t.Fatalf("KeyName = %q", id.KeyName)
	}

	// The store never holds the secret, only its hash.
	secret := key[len(keyPrefix)+idChars+1:]
	for name, v := range s.Contents() {
		if strings.Contains(string(v), secret) || strings.Contains(name, secret) {
			t.Fatalf("store entry %s holds the secret", name)
		}
	}
	// Two keys are different.
	if other := mustCreate(t, k, "other"); other == key {
		t.Fatal("two keys are equal")
	}
}

func TestVerifyFailures(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	key := mustCreate(t, k, "app")
	revokedKey := mustCreate(t, k, "old")
	if err := k.Revoke(ctx, "old"); err != nil {
		t.Fatal(err)
	}

	// Replace the last character of the secret with another canonical one.
	wrongSecret := key[:len(key)-1] + map[bool]string{true: "q", false: "a"}[key[len(key)-1] == 'a']
	unknownID := keyPrefix + strings.Repeat("a", idChars) + key[len(keyPrefix)+idChars:]
	// The secret's last character carries 4 padding bits that must be zero:
	// "b" has value 1, so it is a non-canonical spelling.
	nonCanonical := key[:len(key)-1] + "b"

	tests := []struct {
		name, bearer, reason string
	}{
		{"empty", "", ReasonMalformed},
		{"garbage", "hello", ReasonMalformed},
		{"no prefix", strings.TrimPrefix(key, "aegis_"), ReasonMalformed},
		{"upper case", strings.ToUpper(key), ReasonMalformed},
		{"truncated", key[:len(key)-1], ReasonMalformed},
		{"extra", key + "a", ReasonMalformed},
		{"bad separator", key[:len(keyPrefix)+idChars] + "-" + key[len(keyPrefix)+idChars+1:], ReasonMalformed},
		{"newline in secret", key[:len(key)-2] + "\n" + key[len(key)-1:], ReasonMalformed},
		{"non-canonical", nonCanonical, ReasonMalformed},
		{"wrong secret", wrongSecret, ReasonWrongSecret},
		{"unknown id", unknownID, ReasonUnknownKey},
		{"revoked", revokedKey, ReasonRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := k.Verify(ctx, tt.bearer)
			wantUnauthenticated(t, id, err, tt.reason)
		})
	}
}

func TestVerifyStoreDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	key := mustCreate(t, k, "app")
	s.SetFail(fmt.Errorf("nats: %w", aegis.ErrUnavailable))
	id, err := k.Verify(ctx, key)
	if id != nil || err == nil {
		t.Fatalf("Verify with store down = %v, %v; want an error", id, err)
	}
	// Not "unauthenticated": the gateway must answer 503, not 401.
	if errors.Is(err, ErrUnauthenticated) || !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable and not ErrUnauthenticated", err)
	}
}

func TestCorruptRecordFailsClosed(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	key := mustCreate(t, k, "app")
	id := key[len(keyPrefix) : len(keyPrefix)+idChars]
	for _, v := range []string{`{`, `{"name":"app","hash":"md5:00"}`, `{"name":"app","hash":"sha256:zz"}`} {
		s.Set(recordPrefix+id, []byte(v))
		if _, err := k.Verify(ctx, key); !errors.Is(err, aegis.ErrUnavailable) {
			t.Fatalf("record %s: err = %v, want ErrUnavailable", v, err)
		}
	}
}

func TestCreateValidatesNames(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	good := []string{"a", "ci-deploy", "Team_1.prod", strings.Repeat("x", 64), "-", "_"}
	bad := []string{"", strings.Repeat("x", 65), "a b", "a/b", "a*", "a>", "é", ".a", "a.", "a..b", "a\x00"}
	for _, n := range good {
		if _, err := k.Create(ctx, n); err != nil {
			t.Errorf("Create(%q) = %v, want ok", n, err)
		}
	}
	for _, n := range bad {
		if _, err := k.Create(ctx, n); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("Create(%q) = %v, want ErrInvalidArgument", n, err)
		}
	}
}

func TestCreateDuplicate(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	mustCreate(t, k, "app")
	if _, err := k.Create(ctx, "app"); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("duplicate: %v, want ErrConflict", err)
	}
	// Revoked names stay taken.
	if err := k.Revoke(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Create(ctx, "app"); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("after revoke: %v, want ErrConflict", err)
	}
}

func TestCreateRaceLeavesNoUsableOrphan(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	// Simulate losing the race: the name index appears between the early
	// check and the index write.
	k2 := NewKeys(raceStore{s, func() { s.Set(namePrefix+"app", []byte("aaaaaaaaaaaaaaaa")) }})
	if _, err := k2.Create(ctx, "app"); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("Create = %v, want ErrConflict", err)
	}
	revoked := 0
	for name := range s.Contents() {
		if strings.HasPrefix(name, recordPrefix) {
			rec, err := k.get(ctx, strings.TrimPrefix(name, recordPrefix))
			if err != nil {
				t.Fatal(err)
			}
			if rec.RevokedAt == nil {
				t.Fatalf("orphan record %s not revoked", name)
			}
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("%d orphan records, want 1", revoked)
	}
}

// raceStore runs before() just before the first Create of a name index.
type raceStore struct {
	*memStore
	before func()
}

func (r raceStore) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	if strings.HasPrefix(key, namePrefix) {
		r.before()
	}
	return r.memStore.Create(ctx, key, v)
}

func TestListAndRevoke(t *testing.T) {
	ctx := context.Background()
	k, _, clk := newTestKeys(t)
	created := clk.Now()
	for _, n := range []string{"zeta", "alpha", "mid"} {
		mustCreate(t, k, n)
	}
	clk.Advance(time.Hour)
	if err := k.Revoke(ctx, "mid"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := k.Revoke(ctx, "mid"); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if err := k.Revoke(ctx, "nope"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("revoke unknown: %v, want ErrNotFound", err)
	}

	list, err := k.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ki := range list {
		names = append(names, ki.Name)
		if !ki.CreatedAt.Equal(created) {
			t.Errorf("%s: CreatedAt = %v, want %v", ki.Name, ki.CreatedAt, created)
		}
		if len(ki.ID) != idChars {
			t.Errorf("%s: ID %q", ki.Name, ki.ID)
		}
		switch ki.Name {
		case "mid":
			// The first revocation time is kept.
			if !ki.Revoked || ki.RevokedAt == nil || !ki.RevokedAt.Equal(created.Add(time.Hour)) {
				t.Errorf("mid: %+v, want revoked at %v", ki, created.Add(time.Hour))
			}
		default:
			if ki.Revoked || ki.RevokedAt != nil {
				t.Errorf("%s: revoked: %+v", ki.Name, ki)
			}
		}
	}
	if got := strings.Join(names, ","); got != "alpha,mid,zeta" {
		t.Fatalf("List order = %s", got)
	}
}

func TestRevokeTakesEffectImmediately(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	key := mustCreate(t, k, "app")
	if _, err := k.Verify(ctx, key); err != nil { // now cached
		t.Fatal(err)
	}
	if err := k.Revoke(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	// Same instant: the cache entry must already be gone.
	id, err := k.Verify(ctx, key)
	wantUnauthenticated(t, id, err, ReasonRevoked)
}

func TestCacheTTL(t *testing.T) {
	ctx := context.Background()
	k, s, clk := newTestKeys(t)
	key := mustCreate(t, k, "app")
	// Another node revokes: same store, its own cache.
	other := NewKeys(s)
	other.now = clk.Now

	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	gets := s.Gets()
	for range 100 {
		if _, err := k.Verify(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Gets() - gets; n != 0 {
		t.Fatalf("cached verifications read the store %d times", n)
	}

	if err := other.Revoke(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(CacheTTL - time.Millisecond)
	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatalf("within TTL the cached record is trusted: %v", err)
	}
	clk.Advance(time.Millisecond)
	id, err := k.Verify(ctx, key)
	wantUnauthenticated(t, id, err, ReasonRevoked)

	// A clock that steps backwards does not extend trust.
	k2 := NewKeys(s)
	k2.now = clk.Now
	key2 := mustCreate(t, k2, "app2")
	if _, err := k2.Verify(ctx, key2); err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke(ctx, "app2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-time.Hour)
	id, err = k2.Verify(ctx, key2)
	wantUnauthenticated(t, id, err, ReasonRevoked)
}

func TestUnknownIDsAreNotCached(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	key := mustCreate(t, k, "app")
	for i := range 100 {
		bogus := keyPrefix + b32Encode([]byte(fmt.Sprintf("%010d", i))) + key[len(keyPrefix)+idChars:]
		if _, err := k.Verify(ctx, bogus); Reason(err) != ReasonUnknownKey {
			t.Fatalf("bogus key: %v", err)
		}
	}
	n := 0
	k.cache.Range(func(_, _ any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("cache holds %d entries for unknown ids", n)
	}
}

func TestReasonOfOtherErrors(t *testing.T) {
	if Reason(nil) != "" || Reason(errors.New("x")) != "" {
		t.Fatal("Reason of a non-verification error must be empty")
	}
	wrapped := fmt.Errorf("gateway: %w", errRevoked)
	if Reason(wrapped) != ReasonRevoked || !errors.Is(wrapped, ErrUnauthenticated) {
		t.Fatal("Reason must see through wrapping")
	}
}

// TestVerifyHammer verifies from many goroutines while keys are created and
// revoked; run with -race.
func TestVerifyHammer(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	k.now = time.Now
	k.ttl = time.Millisecond // force store reads to interleave with cache hits
	good := mustCreate(t, k, "good")
	doomed := mustCreate(t, k, "doomed")
	bad := good[:len(good)-1] + "q"
	if bad == good {
		bad = good[:len(good)-1] + "a"
	}

	const workers, rounds = 16, 500
	var wg sync.WaitGroup
	var revoked atomic.Bool
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if id, err := k.Verify(ctx, good); err != nil || id.KeyName != "good" {
					t.Errorf("good key: %v, %v", id, err)
					return
				}
				if _, err := k.Verify(ctx, bad); Reason(err) != ReasonWrongSecret {
					t.Errorf("bad key: %v", err)
					return
				}
				wasRevoked := revoked.Load()
				_, err := k.Verify(ctx, doomed)
				if wasRevoked && err == nil {
					t.Errorf("doomed key verified after Revoke returned")
					return
				}
				if w == 0 && i == rounds/2 {
					if err := k.Revoke(ctx, "doomed"); err != nil {
						t.Error(err)
						return
					}
					revoked.Store(true)
				}
				if w == 1 && i%50 == 0 {
					mustCreate(t, k, fmt.Sprintf("extra-%d", i))
				}
			}
		}()
	}
	wg.Wait()
}

func TestVerifyAllocations(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	key := mustCreate(t, k, "app")
	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { k.Verify(ctx, key) }); n > 1 {
		t.Errorf("cached Verify: %v allocations, want at most 1 (the Identity)", n)
	}
	if n := testing.AllocsPerRun(100, func() { k.Verify(ctx, "aegis_nonsense") }); n != 0 {
		t.Errorf("malformed Verify: %v allocations, want 0", n)
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	k, _, _ := newTestKeys(b)
	k.now = time.Now
	key := mustCreate(b, k, "app")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
