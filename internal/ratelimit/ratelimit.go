// Package ratelimit owns the token buckets that rate limits are counted
// in: one bucket (a route's total), or a bounded set of buckets keyed by
// caller or client address, on golang.org/x/time/rate. A decision says
// whether a request may go on, when to come back (Retry-After) and what
// the RateLimit-Policy and RateLimit response headers of
// draft-ietf-httpapi-ratelimit-headers say.
//
// Buckets live in this server's memory: a limit is counted per server,
// never across the servers sharing one NATS (docs/limits.md). A set never
// holds more than its cap of buckets, however many distinct keys arrive:
// a full bucket is dropped first (a new one would start full too, so
// nothing is lost), then, of a few sampled ones, the one closest to full.
//
// The package never blocks a request and never logs; deciding what a
// refusal means is the caller's (admission).
package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/aegis-platform/aegis/manifest"
)

// Limit is a token bucket's shape: refilled at Rate, holding at most
// Burst tokens (0: the rate's count).
type Limit struct {
	Rate  manifest.Rate
	Burst int
}

// IsZero reports a limit that does not limit.
func (l Limit) IsZero() bool { return l.Rate.IsZero() }

// burst is the bucket's capacity, at least 1.
func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	if l.Rate.Count > math.MaxInt32 {
		return math.MaxInt32
	}
	return max(int(l.Rate.Count), 1)
}

// window is the rate's period in whole seconds, at least 1: the "w" of
// RateLimit-Policy.
func (l Limit) window() int64 { return max(int64(l.Rate.Per/time.Second), 1) }

// Header names of draft-ietf-httpapi-ratelimit-headers, and Retry-After.
const (
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRateLimit  = "RateLimit"
	HeaderRetryAfter = "Retry-After"
)

// PolicyValue is the RateLimit-Policy field of a limit called name:
// `"name";q=COUNT;w=SECONDS`, the rate's count per its period. The burst
// is not a parameter of the draft; the bucket's state is in RateLimit.
func PolicyValue(name string, l Limit) string {
	return strconv.Quote(name) + ";q=" + strconv.FormatInt(l.Rate.Count, 10) + ";w=" + strconv.FormatInt(l.window(), 10)
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// Name is the policy's name ("key", "total", "per_caller",
	// "per_address"), empty for no decision at all.
	Name string
	// Policy is the RateLimit-Policy value, built once per bucket and
	// shared: read it, never modify it.
	Policy []string
	// Remaining is the whole tokens left after this request ("r").
	Remaining int64
	// Reset is the whole seconds until the bucket is full again ("t").
	Reset int64
	// RetryAfter is the whole seconds, at least 1, until a request would
	// be admitted; 0 when this one was.
	RetryAfter int64
}

// IsZero reports that no limit applied.
func (d Decision) IsZero() bool { return d.Name == "" }

// Tighter returns the decision a client should be shown of d and o: a
// refusal over an admission, else the one with fewer tokens left.
func (d Decision) Tighter(o Decision) Decision {
	switch {
	case o.IsZero():
		return d
	case d.IsZero():
		return o
	case d.Allowed != o.Allowed:
		if !d.Allowed {
			return d
		}
		return o
	case o.Remaining < d.Remaining:
		return o
	}
	return d
}

// SetHeaders writes RateLimit-Policy and RateLimit for d into h, and
// Retry-After when d refused. A zero decision writes nothing.
func (d Decision) SetHeaders(h http.Header) {
	if d.IsZero() {
		return
	}
	// The canonical form of the name, so the shared value goes straight
	// into the map.
	h["Ratelimit-Policy"] = d.Policy
	h.Set(HeaderRateLimit, d.Value())
	if !d.Allowed {
		h.Set(HeaderRetryAfter, strconv.FormatInt(d.RetryAfter, 10))
	}
}

// Value is the RateLimit field: `"name";r=REMAINING;t=RESET`.
func (d Decision) Value() string {
	b := make([]byte, 0, len(d.Name)+32)
	b = strconv.AppendQuote(b, d.Name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, d.Remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, d.Reset, 10)
	return string(b)
}

// bucket is one token bucket and what a set needs to evict it.
type bucket struct {
	lim    *rate.Limiter
	limit  Limit
	policy []string
	// perSec and burst are the limiter's, kept here so a decision reads
	// them without taking its lock again.
	perSec, burst float64
	// fullAt is when the bucket holds its whole burst again (Unix
	// nanoseconds): from then on dropping it loses nothing.
	fullAt int64
}

func newBucket(name string, l Limit, now time.Time) *bucket {
	perSec, burst := l.Rate.PerSecond(), l.burst()
	return &bucket{
		lim:    rate.NewLimiter(rate.Limit(perSec), burst),
		limit:  l,
		policy: []string{PolicyValue(name, l)},
		perSec: perSec, burst: float64(burst),
		fullAt: now.UnixNano(),
	}
}

// take spends one token at now, if there is one.
func (b *bucket) take(name string, now time.Time) Decision {
	allowed := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	perSec, burst := b.perSec, b.burst
	d := Decision{Allowed: allowed, Name: name, Policy: b.policy, Remaining: max(int64(tokens), 0)}
	untilFull := 0.0
	if perSec > 0 {
		untilFull = (burst - tokens) / perSec
	}
	d.Reset = ceilSeconds(untilFull)
	b.fullAt = now.UnixNano() + int64(untilFull*float64(time.Second))
	if !allowed {
		d.RetryAfter = max(ceilSeconds((1-tokens)/perSec), 1)
	}
	return d
}

// ceilSeconds rounds s up to whole seconds, 0 for none.
func ceilSeconds(s float64) int64 {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(math.Ceil(s))
}

// Bucket is a single token bucket (a route's total). Safe for concurrent
// use.
type Bucket struct {
	name string
	mu   sync.Mutex
	b    *bucket
}

// NewBucket returns a full bucket for limit l, reported under name.
func NewBucket(name string, l Limit) *Bucket {
	return &Bucket{name: name, b: newBucket(name, l, time.Now())}
}

// TakeAt spends one token at now.
func (b *Bucket) TakeAt(now time.Time) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.take(b.name, now)
}
