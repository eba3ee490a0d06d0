// Package memkv is an in-memory key-value store for unit tests of the
// packages that declare a small store interface (auth, admin, registry).
// It keeps the contract of the JetStream bucket, and proves it by passing
// the same suite (testkit/kvcontract): ErrNotFound for a missing key,
// ErrConflict for a Create over a value or an Update at any revision but
// the key's, ErrInvalidArgument for a key the bucket refuses, revisions
// that grow with every write, a delete that leaves the key a revision of
// its own (so Update at 0 creates only a key never written), sorted prefix
// listings, copies in and out.
//
// What it deliberately does not do, and the suite skips for it: key TTLs
// (CreateTTL, KeyTTL), which no package whose unit tests use it needs.
// Nor does it keep history or watch keys, which the suite does not ask of
// any store. End-to-end tests use the real bucket.
//
// Beyond the contract it has what tests need to look in and break things:
// Set, Contents, SetFail, Gets, Writes.
package memkv

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aegis-platform/aegis"
)

// Store is safe for concurrent use.
type Store struct {
	mu sync.Mutex
	m  map[string][]byte
	// revs holds the revision of every key written, deleted ones too: a
	// delete is a write of its own, as the bucket's delete marker is.
	revs   map[string]uint64
	rev    uint64
	writes uint64
	fail   error // returned by every call when set
	gets   atomic.Int64
}

// New returns an empty store.
func New() *Store { return &Store{m: map[string][]byte{}, revs: map[string]uint64{}} }

// keyRe and validKey are the bucket's rule for keys (jetstream.ValidKey),
// repeated because memkv must not pull NATS into every unit test; the
// contract suite keeps the two in step.
var keyRe = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func validKey(verb, key string) error {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") || !keyRe.MatchString(key) {
		return fmt.Errorf("%s %q: invalid key: %w", verb, key, aegis.ErrInvalidArgument)
	}
	return nil
}

// Get returns the value and revision of key.
func (s *Store) Get(_ context.Context, key string) ([]byte, uint64, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, 0, s.fail
	}
	if err := validKey("get", key); err != nil {
		return nil, 0, err
	}
	v, ok := s.m[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, aegis.ErrNotFound)
	}
	return slices.Clone(v), s.revs[key], nil
}

// Put writes key.
func (s *Store) Put(_ context.Context, key string, v []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if err := validKey("put", key); err != nil {
		return 0, err
	}
	return s.put(key, v), nil
}

// Create writes key only if it has no value.
func (s *Store) Create(_ context.Context, key string, v []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if err := validKey("create", key); err != nil {
		return 0, err
	}
	if _, ok := s.m[key]; ok {
		return 0, fmt.Errorf("create %s: %w", key, aegis.ErrConflict)
	}
	return s.put(key, v), nil
}

// Update writes key only if its revision is rev; a key never written has
// revision 0, a deleted one that of its delete.
func (s *Store) Update(_ context.Context, key string, v []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if err := validKey("update", key); err != nil {
		return 0, err
	}
	if s.revs[key] != rev {
		return 0, fmt.Errorf("update %s: %w", key, aegis.ErrConflict)
	}
	return s.put(key, v), nil
}

// Delete removes key; a missing key is no error. Like the bucket's delete
// marker, it gives the key a new revision, so an Update at the revision
// read before the delete, or at 0, conflicts.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if err := validKey("delete", key); err != nil {
		return err
	}
	delete(s.m, key)
	s.rev++
	s.revs[key] = s.rev
	return nil
}

// Keys lists, sorted, the keys starting with prefix.
func (s *Store) Keys(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	out := []string{}
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *Store) put(key string, v []byte) uint64 {
	s.rev++
	s.writes++
	if v == nil {
		v = []byte{} // an empty value is still a value, as in the bucket
	}
	s.m[key], s.revs[key] = slices.Clone(v), s.rev
	return s.rev
}

// Set writes key directly, as something outside the code under test would
// (a damaged record, a racing writer).
func (s *Store) Set(key string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, v)
}

// Contents is a copy of every key and value.
func (s *Store) Contents() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// SetFail makes every call fail with err (nil: work again).
func (s *Store) SetFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Gets counts Get calls, for tests of caches in front of the store.
func (s *Store) Gets() int64 { return s.gets.Load() }

// Writes counts successful writes (Put, Create, Update, Set); deletes are
// not counted.
func (s *Store) Writes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}
