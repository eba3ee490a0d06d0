// Package memkv is an in-memory key-value store for unit tests of the
// packages that declare a small store interface (auth, admin, registry).
// It honours the contract the JetStream bucket keeps (see the jetstream
// contract tests): ErrNotFound for a missing key, ErrConflict for a Create
// over an existing key or an Update at a stale revision, a revision per
// key. End-to-end tests use the real bucket.
package memkv

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aegis-platform/aegis"
)

// Store is safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	m    map[string][]byte
	revs map[string]uint64
	rev  uint64
	fail error // returned by every call when set
	gets atomic.Int64
}

// New returns an empty store.
func New() *Store { return &Store{m: map[string][]byte{}, revs: map[string]uint64{}} }

// Get returns the value and revision of key.
func (s *Store) Get(_ context.Context, key string) ([]byte, uint64, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, 0, s.fail
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
	return s.put(key, v), nil
}

// Create writes key only if it has no value.
func (s *Store) Create(_ context.Context, key string, v []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if _, ok := s.m[key]; ok {
		return 0, fmt.Errorf("create %s: %w", key, aegis.ErrConflict)
	}
	return s.put(key, v), nil
}

// Update writes key only if its revision is rev.
func (s *Store) Update(_ context.Context, key string, v []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if s.revs[key] != rev {
		return 0, fmt.Errorf("update %s: %w", key, aegis.ErrConflict)
	}
	return s.put(key, v), nil
}

// Delete removes key; a missing key is no error.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.m, key)
	delete(s.revs, key)
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

// Writes counts successful writes (Put, Create, Update, Set).
func (s *Store) Writes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}
