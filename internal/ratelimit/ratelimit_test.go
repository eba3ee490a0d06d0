package ratelimit

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/manifest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func perSecond(n int64) manifest.Rate { return manifest.Rate{Count: n, Per: time.Second} }

func TestBucketArithmetic(t *testing.T) {
	// 10/s with a burst of 5: five at once, then one every 100 ms.
	b := NewBucket("total", Limit{Rate: perSecond(10), Burst: 5})
	for i := range 5 {
		d := b.TakeAt(t0)
		if !d.Allowed || d.Remaining != int64(4-i) {
			t.Fatalf("request %d: %+v, want allowed with %d left", i, d, 4-i)
		}
	}
	d := b.TakeAt(t0)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != 1 || d.Reset != 1 {
		t.Fatalf("sixth request: %+v, want refused, 0 left, retry after 1 s, full in 1 s", d)
	}
	// 100 ms later one token is back, and only one.
	at := t0.Add(100 * time.Millisecond)
	if d := b.TakeAt(at); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after 100 ms: %+v, want one admitted", d)
	}
	if d := b.TakeAt(at); d.Allowed {
		t.Fatalf("second after 100 ms: %+v, want refused", d)
	}
	// After a long idle the bucket holds its burst, never more.
	at = at.Add(time.Hour)
	admitted := 0
	for range 20 {
		if b.TakeAt(at).Allowed {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("after an hour idle admitted %d at once, want the burst of 5", admitted)
	}
}

func TestRetryAfterWholeSeconds(t *testing.T) {
	tests := []struct {
		name      string
		rate      manifest.Rate
		burst     int
		wantRetry int64
		wantReset int64
	}{
		// A token every 100 ms: the shortest wait HTTP can say.
		{"fast", perSecond(10), 1, 1, 1},
		// A token every 6 s.
		{"per minute", manifest.Rate{Count: 10, Per: time.Minute}, 1, 6, 6},
		// A token every 2.5 s rounds up; the burst of 4 takes 10 s to refill.
		{"round up", manifest.Rate{Count: 24, Per: time.Minute}, 4, 3, 10},
		{"per hour", manifest.Rate{Count: 1, Per: time.Hour}, 1, 3600, 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBucket("k", Limit{Rate: tt.rate, Burst: tt.burst})
			for range tt.burst {
				if !b.TakeAt(t0).Allowed {
					t.Fatal("burst refused")
				}
			}
			d := b.TakeAt(t0)
			if d.Allowed || d.RetryAfter != tt.wantRetry || d.Reset != tt.wantReset {
				t.Fatalf("got %+v, want refused with Retry-After %d and reset %d", d, tt.wantRetry, tt.wantReset)
			}
		})
	}
}

func TestBurstDefaultsToCount(t *testing.T) {
	b := NewBucket("k", Limit{Rate: perSecond(3)})
	n := 0
	for b.TakeAt(t0).Allowed {
		n++
	}
	if n != 3 {
		t.Fatalf("admitted %d at once, want the rate's count 3", n)
	}
}

func TestHeaders(t *testing.T) {
	l := Limit{Rate: manifest.Rate{Count: 600, Per: time.Minute}, Burst: 2}
	b := NewBucket("per_address", l)
	h := http.Header{}
	b.TakeAt(t0).SetHeaders(h)
	if got, want := h.Get("RateLimit-Policy"), `"per_address";q=600;w=60`; got != want {
		t.Errorf("RateLimit-Policy = %s, want %s", got, want)
	}
	if got, want := h.Get("RateLimit"), `"per_address";r=1;t=1`; got != want {
		t.Errorf("RateLimit = %s, want %s", got, want)
	}
	if h.Get("Retry-After") != "" {
		t.Errorf("Retry-After on an admitted request: %s", h.Get("Retry-After"))
	}
	b.TakeAt(t0)
	h = http.Header{}
	b.TakeAt(t0).SetHeaders(h)
	if got, want := h.Get("RateLimit"), `"per_address";r=0;t=1`; got != want {
		t.Errorf("refused RateLimit = %s, want %s", got, want)
	}
	if got := h.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	h = http.Header{}
	Decision{}.SetHeaders(h)
	if len(h) != 0 {
		t.Errorf("a zero decision wrote %v", h)
	}
}

func TestTighter(t *testing.T) {
	a := Decision{Allowed: true, Name: "a", Remaining: 5}
	b := Decision{Allowed: true, Name: "b", Remaining: 2}
	no := Decision{Allowed: false, Name: "no", Remaining: 0}
	for _, tt := range []struct{ x, y, want Decision }{
		{a, b, b}, {b, a, b}, {a, no, no}, {no, b, no}, {a, Decision{}, a}, {Decision{}, b, b},
	} {
		if got := tt.x.Tighter(tt.y); got.Name != tt.want.Name {
			t.Errorf("%s.Tighter(%s) = %s, want %s", tt.x.Name, tt.y.Name, got.Name, tt.want.Name)
		}
	}
}

func TestSetKeysAreIndependent(t *testing.T) {
	s := NewSet("per_caller", 100)
	l := Limit{Rate: perSecond(1)}
	if !s.TakeAt("a", l, t0).Allowed || !s.TakeBytesAt([]byte("b"), l, t0).Allowed {
		t.Fatal("first request of a key refused")
	}
	if s.TakeAt("a", l, t0).Allowed || s.TakeAt("b", l, t0).Allowed {
		t.Fatal("second request within the second admitted")
	}
	// A changed limit gets a new, full bucket.
	if !s.TakeAt("a", Limit{Rate: perSecond(2)}, t0).Allowed {
		t.Fatal("changed limit kept the old bucket")
	}
}

// TestSetBounded floods a set with distinct keys: it never holds more
// than its cap, whether the buckets are full (swept) or in use (sampled
// eviction).
func TestSetBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		step time.Duration // between requests: long enough to refill, or not
	}{{"idle keys", 2 * time.Second}, {"busy keys", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet("per_address", 1000)
			l := Limit{Rate: perSecond(1)}
			now := t0
			for i := range 100_000 {
				s.TakeAt("10.0."+strconv.Itoa(i), l, now)
				now = now.Add(tt.step)
				if i%1000 == 0 && s.Len() > s.Cap() {
					t.Fatalf("after %d keys the set holds %d buckets, over its cap %d", i+1, s.Len(), s.Cap())
				}
			}
			if s.Len() > s.Cap() || s.Cap() > 1008 {
				t.Fatalf("set holds %d buckets, cap %d", s.Len(), s.Cap())
			}
		})
	}
}

// TestSetEvictsFullFirst: at the cap, a bucket in use survives a flood of
// keys that each come once, because full buckets are dropped first.
func TestSetEvictsFullFirst(t *testing.T) {
	s := NewSet("per_address", 64) // four buckets per shard
	l := Limit{Rate: manifest.Rate{Count: 1, Per: time.Hour}}
	hot := "hot"
	s.TakeAt(hot, l, t0) // now empty for an hour
	now := t0.Add(2 * time.Second)
	for i := range 200 {
		// Every other key came long ago and is full again by now.
		s.TakeAt("cold-"+strconv.Itoa(i), Limit{Rate: perSecond(1000)}, now)
		now = now.Add(sweepEvery)
	}
	if d := s.TakeAt(hot, l, now); d.Allowed {
		t.Fatalf("the hot key's empty bucket was evicted for full ones: %+v", d)
	}
}

func TestSetTakeAllocatesNothing(t *testing.T) {
	s := NewSet("key", 0)
	l := Limit{Rate: perSecond(1_000_000)}
	key, addr := "mobile-app", []byte{10, 0, 0, 1}
	s.TakeAt(key, l, t0)
	s.TakeBytesAt(addr, l, t0)
	if n := testing.AllocsPerRun(100, func() { s.TakeAt(key, l, t0) }); n != 0 {
		t.Errorf("TakeAt of a known key allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { s.TakeBytesAt(addr, l, t0) }); n != 0 {
		t.Errorf("TakeBytesAt of a known key allocates %v times", n)
	}
}

func BenchmarkSetTake(b *testing.B) {
	s := NewSet("key", 0)
	l := Limit{Rate: perSecond(manifest.MaxRateCount)}
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.TakeAt(keys[i%len(keys)], l, now)
			i++
		}
	})
}

func BenchmarkBucketTake(b *testing.B) {
	bk := NewBucket("total", Limit{Rate: perSecond(manifest.MaxRateCount)})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		bk.TakeAt(now)
	}
}
