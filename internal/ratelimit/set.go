package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxKeys is the cap of a set's buckets when none is given: about
// 2.5 MB of buckets at most per set.
const DefaultMaxKeys = 10_000

// shards splits a set so that requests of different keys rarely wait for
// one lock.
const shards = 16

// sweepEvery spaces the sweeps of full buckets in a shard at its cap, so a
// flood of new keys costs a whole-shard scan at most once per interval;
// between sweeps a new key evicts a sampled bucket instead.
const sweepEvery = time.Second

// evictSample is how many buckets a new key at the cap looks at to pick
// the one to evict: the one closest to full, whose loss matters least.
const evictSample = 8

// Set is a bounded set of token buckets by key (an API key's name, a
// caller, a client address). Safe for concurrent use; taking a token from
// an existing key's bucket allocates nothing.
type Set struct {
	name     string
	perShard int
	seed     maphash.Seed
	shards   [shards]shard
}

type shard struct {
	mu        sync.Mutex
	m         map[string]*bucket
	lastSweep int64
	_         [40]byte // keeps neighbouring shards' locks off one cache line
}

// NewSet returns an empty set whose decisions are reported under name
// ("per_address") and which holds at most maxKeys buckets (0:
// DefaultMaxKeys; rounded up to a multiple of the shard count).
func NewSet(name string, maxKeys int) *Set {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	s := &Set{name: name, perShard: max((maxKeys+shards-1)/shards, 1), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*bucket)
	}
	return s
}

// TakeAt spends one token of key's bucket at now, limited by l. A key
// seen for the first time, or whose limit changed, gets a full bucket.
func (s *Set) TakeAt(key string, l Limit, now time.Time) Decision {
	sh := &s.shards[maphash.String(s.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[key]
	if b == nil || b.limit != l {
		b = s.insert(sh, key, l, now)
	}
	return b.take(s.name, now)
}

// TakeBytesAt is TakeAt for a key held in bytes (a client address), which
// a lookup does not copy.
func (s *Set) TakeBytesAt(key []byte, l Limit, now time.Time) Decision {
	sh := &s.shards[maphash.Bytes(s.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[string(key)]
	if b == nil || b.limit != l {
		b = s.insert(sh, string(key), l, now)
	}
	return b.take(s.name, now)
}

// insert puts a full bucket for key into sh, making room first when sh is
// at its cap. The caller holds sh.mu.
func (s *Set) insert(sh *shard, key string, l Limit, now time.Time) *bucket {
	if _, ok := sh.m[key]; !ok && len(sh.m) >= s.perShard {
		s.makeRoom(sh, now.UnixNano())
	}
	b := newBucket(s.name, l, now)
	sh.m[key] = b
	return b
}

// makeRoom drops every full bucket of sh (at most once per sweepEvery),
// and if that freed nothing, of a few sampled buckets the one closest to
// full.
func (s *Set) makeRoom(sh *shard, now int64) {
	if now-sh.lastSweep >= int64(sweepEvery) {
		sh.lastSweep = now
		for k, b := range sh.m {
			if b.fullAt <= now {
				delete(sh.m, k)
			}
		}
		if len(sh.m) < s.perShard {
			return
		}
	}
	// Map iteration starts at a random place: a cheap random sample.
	var victim string
	oldest, n := int64(0), 0
	for k, b := range sh.m {
		if n == 0 || b.fullAt < oldest {
			victim, oldest = k, b.fullAt
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(sh.m, victim)
}

// Len is the number of buckets held.
func (s *Set) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Cap is the most buckets the set holds.
func (s *Set) Cap() int { return s.perShard * shards }
