package guard

import (
	"sync"

	"golang.org/x/time/rate"
)

// Blocked reports whether addr, as Proxies.ClientAddress gives it (an
// IPv4 address or an IPv6 /64), is blocked now. It is a map lookup on this
// server's copy of the blocks.
func (g *Guard) Blocked(addr string) bool {
	return g.inForce(KindAddress, addr, g.blocks.Load().addresses)
}

// HasBlocks reports whether any block of an address is in force on this
// server: an atomic load, so a request need not work out its client's
// address while nothing is blocked, the usual state.
func (g *Guard) HasBlocks() bool { return g != nil && g.blocks.Load().addresses > 0 }

// Suspended reports whether the API key with this id is suspended.
func (g *Guard) Suspended(keyID string) bool {
	return g != nil && g.inForce(KindKey, keyID, g.blocks.Load().keys)
}

// Quarantined reports whether a function is quarantined: its triggers
// stopped, its events left waiting.
func (g *Guard) Quarantined(app, function string) bool {
	if g == nil {
		return false
	}
	set := g.blocks.Load()
	if set.functions == 0 {
		return false
	}
	return g.inForce(KindQuarantine, FunctionTarget(app, function), set.functions)
}

// RouteDisabled reports whether a route ("METHOD /path" as declared) is
// disabled.
func (g *Guard) RouteDisabled(app, route string) bool {
	if g == nil {
		return false
	}
	set := g.blocks.Load()
	if set.routes == 0 {
		return false
	}
	return g.inForce(KindRoute, RouteTarget(app, route), set.routes)
}

// Throttled reports whether one more invocation of a throttled function
// goes beyond its throttle's rate on this server now (it is counted when
// it does not). An unthrottled function costs one load.
func (g *Guard) Throttled(app, function string) bool {
	if g == nil {
		return false
	}
	set := g.blocks.Load()
	if set.throttled == 0 {
		return false
	}
	b, ok := set.get(KindThrottle, FunctionTarget(app, function))
	if !ok || !g.cfg.Now().Before(b.Expires) {
		return false
	}
	return !g.throttles.limiter(b).AllowN(g.cfg.Now(), 1)
}

func (g *Guard) inForce(kind, target string, n int) bool {
	if n == 0 {
		return false
	}
	b, ok := g.blocks.Load().get(kind, target)
	return ok && g.cfg.Now().Before(b.Expires)
}

// throttles are this server's token buckets of the throttle blocks in
// force, one per block: a throttle caps each server at the block's rate.
type throttles struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter // by block id
}

func (t *throttles) limiter(b Block) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.m[b.ID]; ok && float64(l.Limit()) == b.Rate {
		return l
	}
	if t.m == nil {
		t.m = map[string]*rate.Limiter{}
	}
	l := rate.NewLimiter(rate.Limit(b.Rate), max(1, int(b.Rate)))
	t.m[b.ID] = l
	return l
}

// keep forgets the buckets of throttles no longer in force.
func (t *throttles) keep(set *blockSet) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.m {
		found := false
		for _, b := range set.m {
			if b.ID == id {
				found = true
				break
			}
		}
		if !found {
			delete(t.m, id)
		}
	}
}
