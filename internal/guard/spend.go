package guard

import (
	"sync"
	"sync/atomic"
	"time"
)

// The invocation signal is sent once per invocation: by far the busiest,
// and on the path of every request that succeeds. Rather than through the
// queue (a channel send, and a wake-up of the counting goroutine on
// another core, per request), it is added to a counter per function with
// two atomic adds; the counting goroutine takes the counters every Tick and
// counts what they hold as that many signals at that moment. A rule on
// invocations therefore sees them up to Tick late, in batches: its window
// should be several Ticks long (the default spend-spike rule's is a
// minute).

// DefaultTick is how often the invocation counters are counted.
const DefaultTick = 100 * time.Millisecond

type spendKey struct{ app, function string }

// spendCount is what one function spent since the last tick.
type spendCount struct {
	n atomic.Int64
	// microGBs is its GB-seconds in millionths, so adds stay atomic.
	microGBs atomic.Int64
}

// spending holds the counters, at most DefaultMaxTargets functions (the
// functions deployed bound them; beyond the cap an invocation is dropped
// and counted in Dropped).
type spending struct {
	mu sync.RWMutex
	m  map[spendKey]*spendCount
}

// spend counts one invocation of e's function.
func (g *Guard) spend(e *Event) {
	k := spendKey{e.App, e.Function}
	g.spent.mu.RLock()
	c := g.spent.m[k]
	g.spent.mu.RUnlock()
	if c == nil {
		g.spent.mu.Lock()
		if c = g.spent.m[k]; c == nil {
			if len(g.spent.m) >= g.cfg.MaxTargets {
				g.spent.mu.Unlock()
				g.dropped.Add(1)
				return
			}
			c = &spendCount{}
			g.spent.m[k] = c
		}
		g.spent.mu.Unlock()
	}
	c.n.Add(1)
	c.microGBs.Add(int64(e.Value * 1e6))
}

// drainSpend counts what every function spent since the last tick. It
// runs on the counting goroutine.
func (g *Guard) drainSpend() {
	g.spent.mu.RLock()
	type pending struct {
		k spendKey
		c *spendCount
	}
	all := make([]pending, 0, len(g.spent.m))
	for k, c := range g.spent.m {
		all = append(all, pending{k, c})
	}
	g.spent.mu.RUnlock()
	now := g.cfg.Now()
	for _, p := range all {
		n := p.c.n.Swap(0)
		if n == 0 {
			continue
		}
		e := Event{Signal: Invocation, App: p.k.app, Function: p.k.function, Value: float64(p.c.microGBs.Swap(0)) / 1e6}
		g.countAt(&e, n, now)
	}
}
