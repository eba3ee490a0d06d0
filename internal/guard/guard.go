// Package guard owns the guard (docs/guard.md): the platform's signals
// (authentication failures, route misses, permission denials, schema
// violations, refusals, timeouts and traps, dead letters, hop-limit stops,
// invocations and their GB-seconds, new call-graph edges), the rules that
// count them per target (address, key, function, route, edge) in windows,
// and what a rule does when it fires: an alert, once per incident, and
// blocks (an address or a key refused, a function throttled or
// quarantined, a route disabled) that expire, are listed and can be lifted.
//
// Counting is per server and in memory. Blocks and incidents are shared:
// each is one record in a key-value bucket every server on the NATS reads,
// and each server keeps its own copy of the current blocks, refreshed every
// Refresh interval, so the per-request check is a map lookup and never a
// round trip. A signal never waits: it goes through a bounded queue and is
// dropped (and counted) when the queue is full.
//
// The guard never sees a credential: a signal names an address, a key's
// id, a function, a route or an edge.
package guard

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Event is one signal and what it concerns. Only the fields its signal
// documents are set; a rule grouping by a field the event lacks does not
// count it.
type Event struct {
	Signal Signal
	// Remote is the client's address as Proxies.ClientAddress gives it,
	// or an http.Request's RemoteAddr.
	Remote string
	// Key is the API key's id (never its secret).
	Key           string
	App, Function string
	// Route is "METHOD /path" as the manifest declares it.
	Route string
	// Edge names a call-graph edge ("function save-entry → table entries").
	Edge string
	// Value is an invocation's GB-seconds.
	Value float64
	// At is when it happened, when that was not just now: a new edge's
	// first use (its record is written a flush later), which decides
	// whether it fell within the learning window.
	At time.Time
}

// target is what a rule grouping by g counts e under; "" when e has none.
func (e *Event) target(g GroupBy) string {
	switch g {
	case ByAddress:
		if e.Remote == "" {
			return ""
		}
		return Address(AddressOf(e.Remote))
	case ByKey:
		return e.Key
	case ByFunction:
		if e.Function == "" {
			return ""
		}
		return FunctionTarget(e.App, e.Function)
	case ByRoute:
		if e.Route == "" {
			return ""
		}
		return RouteTarget(e.App, e.Route)
	case ByEdge:
		if e.Edge == "" {
			return ""
		}
		return e.App + ": " + e.Edge
	}
	return ""
}

// FunctionTarget names a function as a block of it does: "app/function".
func FunctionTarget(app, function string) string { return app + "/" + function }

// RouteTarget names a route as a block of it does: "app METHOD /path".
func RouteTarget(app, route string) string { return app + " " + route }

// Defaults of Config.
const (
	DefaultMaxTargets = 10000
	DefaultRefresh    = time.Second
	// queueSize bounds signals waiting to be counted.
	queueSize = 4096
	// alertQueue bounds alerts waiting for OnAlert.
	alertQueue = 256
	// storeTimeout bounds one write or refresh of the shared blocks.
	storeTimeout = 5 * time.Second
)

// Config wires a Guard.
type Config struct {
	// Store holds the blocks and incidents every server shares; nil keeps
	// them on this server only (tests).
	Store  Store
	Logger *slog.Logger
	// Rules replaces DefaultRules when not nil; an empty, non-nil slice
	// counts nothing and blocks nothing. SetRules replaces them later.
	Rules []Rule
	// MaxTargets bounds the targets each rule counts at once (default
	// DefaultMaxTargets); beyond it the least recently seen is forgotten.
	MaxTargets int
	// Refresh is how often the shared blocks are read again (default
	// DefaultRefresh): how long a block placed or lifted on another
	// server takes to reach this one.
	Refresh time.Duration
	// OnBlock, when set, is told of every block this server places (the
	// metric).
	OnBlock func(rule string)
	// OnAlert, when set, is given each incident this server opens, on a
	// goroutine of its own (it may block briefly; alerts beyond a queue of
	// 256 waiting are dropped and logged).
	OnAlert func(Alert)
	// Tick is how often the invocation counters are counted (default
	// DefaultTick; spend.go).
	Tick time.Duration
	// DeployedAt tells when an app's active version was deployed, for the
	// learning window of new-edge rules; nil treats every app as deployed
	// long ago.
	DeployedAt func(app string) time.Time
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Guard counts signals and holds the blocks. Its methods are safe for
// concurrent use.
type Guard struct {
	cfg Config
	log *slog.Logger

	// rules is the rule set in force; Observe reads which signals any
	// rule counts from it without a lock.
	rules    atomic.Pointer[ruleSet]
	counters map[string]counter // by rule name, owned by run

	queue   chan Event
	swap    chan *ruleSet
	dropped atomic.Int64

	// blocks is this server's copy of the current blocks, replaced whole
	// on every change so lookups read it without a lock.
	blocks atomic.Pointer[blockSet]
	mu     sync.Mutex       // serializes changes of blocks and pending
	known  map[string]Block // by id, what the store held at the last refresh
	// pending are blocks placed here whose write to the store failed:
	// enforced here, written again at every refresh.
	pending map[string]Block
	// incidents this server opened or met, by id, until they end: a rule
	// firing again on a target with an open incident raises no alert and
	// needs no round trip to learn it. Owned by run.
	incidents map[string]time.Time

	throttles throttles
	alerts    chan Alert
	spent     spending // the invocation signal's counters (spend.go)

	refresh   *periodic.Loop
	stop      chan struct{}
	done      chan struct{}
	started   atomic.Bool
	closeOnce sync.Once
}

// ruleSet is an immutable set of rules and the signals they count.
type ruleSet struct {
	rules []Rule
	wants [signalEnd]bool
}

func newRuleSet(rules []Rule) *ruleSet {
	rs := &ruleSet{}
	for _, r := range rules {
		if r.Disabled || r.Validate() != nil {
			continue // validated by the server's configuration; never fires
		}
		rs.rules = append(rs.rules, r)
		for _, s := range r.Signals {
			rs.wants[s] = true
		}
	}
	return rs
}

// New returns a guard that counts nothing until Open.
func New(cfg Config) *Guard {
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules()
	}
	if cfg.MaxTargets <= 0 {
		cfg.MaxTargets = DefaultMaxTargets
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	g := &Guard{cfg: cfg, log: cfg.Logger, counters: map[string]counter{}, queue: make(chan Event, queueSize),
		swap: make(chan *ruleSet), known: map[string]Block{}, pending: map[string]Block{}, incidents: map[string]time.Time{},
		alerts: make(chan Alert, alertQueue), stop: make(chan struct{}), done: make(chan struct{})}
	rs := newRuleSet(cfg.Rules)
	g.rules.Store(rs)
	g.applyCounters(rs)
	g.blocks.Store(&blockSet{})
	g.spent.m = map[spendKey]*spendCount{}
	return g
}

// SetRules replaces the rules in force. Every rule must validate; a rule
// that is unchanged keeps its counts, a new or changed one starts from
// zero. Blocks already placed stay until they expire or are lifted.
func (g *Guard) SetRules(rules []Rule) error {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	rs := newRuleSet(rules)
	g.rules.Store(rs)
	if !g.started.Load() {
		g.applyCounters(rs)
		return nil
	}
	// The counters belong to the counting goroutine; until it has them,
	// a rule without its counter counts nothing.
	select {
	case g.swap <- rs:
	case <-g.done:
	}
	return nil
}

// Rules returns the rules in force (a disabled rule is not among them).
func (g *Guard) Rules() []Rule {
	rs := g.rules.Load().rules
	out := make([]Rule, len(rs))
	copy(out, rs)
	return out
}

// applyCounters makes the counters match rs, keeping those of unchanged
// rules. It runs on the counting goroutine (or before it starts).
func (g *Guard) applyCounters(rs *ruleSet) {
	next := make(map[string]counter, len(rs.rules))
	for _, r := range rs.rules {
		if c, ok := g.counters[r.Name]; ok && reflect.DeepEqual(c.rule(), r) {
			next[r.Name] = c
			continue
		}
		next[r.Name] = newCounter(r, g.cfg.MaxTargets)
	}
	g.counters = next
}

// Open reads the current blocks and starts counting and refreshing.
func (g *Guard) Open(ctx context.Context) error {
	if g.cfg.Store != nil {
		if err := g.sync(ctx); err != nil {
			return err
		}
		g.refresh = periodic.Start(g.cfg.Refresh, storeTimeout, func(ctx context.Context) {
			if err := g.sync(ctx); err != nil {
				g.log.Warn("guard blocks not refreshed", logkey.Error, err)
			}
		})
	}
	g.started.Store(true)
	go g.run()
	go g.deliverAlerts()
	return nil
}

// Close stops counting and refreshing. Safe to call twice.
func (g *Guard) Close() {
	g.closeOnce.Do(func() {
		close(g.stop)
		if g.started.Load() {
			<-g.done
		}
		if g.refresh != nil {
			g.refresh.Stop()
		}
	})
}

// Note tells the guard of one signal from a client: its address as
// Proxies.ClientAddress gives it (or an http.Request's RemoteAddr).
func (g *Guard) Note(sig Signal, remote string) {
	g.Observe(Event{Signal: sig, Remote: remote})
}

// Observe tells the guard of one signal. It never blocks: when the queue
// is full the signal is dropped and counted (Dropped). A nil guard
// observes nothing, so callers need not check.
func (g *Guard) Observe(e Event) {
	if g == nil || e.Signal >= signalEnd || !g.rules.Load().wants[e.Signal] {
		return
	}
	if e.Signal == Invocation {
		g.spend(&e) // counted at the next tick (spend.go)
		return
	}
	select {
	case g.queue <- e:
	default:
		g.dropped.Add(1)
	}
}

// Wants reports whether any rule counts sig: a caller may skip building
// an Event nobody counts.
func (g *Guard) Wants(sig Signal) bool {
	return g != nil && sig < signalEnd && g.rules.Load().wants[sig]
}

// Dropped is how many signals a full queue has dropped.
func (g *Guard) Dropped() int64 { return g.dropped.Load() }

// AddressOf is the address part of an http.Request's RemoteAddr
// ("192.0.2.1:5000" → "192.0.2.1", "[2001:db8::1]:5000" → "2001:db8::1");
// anything else is returned as it is.
func AddressOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// Address is what the guard counts and blocks for a client host: an IPv4
// address as it is, an IPv6 one by its /64 ("2001:db8:1:2::/64"), which
// one subscriber usually holds whole (as the route's per_address rate
// limit counts it): an attacker cannot leave a block by moving within
// their own network. A v4-mapped IPv6 address is its IPv4 address;
// anything that is not an address is returned as it is. An IPv4 host
// costs no parsing.
func Address(host string) string {
	if !strings.Contains(host, ":") {
		return host
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return host
	}
	return p.String()
}

// run counts signals until Close.
func (g *Guard) run() {
	defer close(g.done)
	tick := time.NewTicker(g.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
			g.drainSpend()
		case rs := <-g.swap:
			g.applyCounters(rs)
		case e := <-g.queue:
			g.count(&e)
		}
	}
}

// count applies every rule counting e's signal to it.
func (g *Guard) count(e *Event) { g.countAt(e, 1, g.cfg.Now()) }

// countAt applies every rule counting e's signal to n such signals at now.
func (g *Guard) countAt(e *Event, n int64, now time.Time) {
	for _, r := range g.rules.Load().rules {
		if !counts(r, e.Signal) {
			continue
		}
		target := e.target(r.GroupBy)
		if target == "" || g.enforced(r, target) {
			continue // counted again once the block ends
		}
		if e.Signal == NewEdge && r.Learning > 0 && g.cfg.DeployedAt != nil {
			at := now
			if !e.At.IsZero() && e.At.Before(now) {
				at = e.At
			}
			if d := g.cfg.DeployedAt(e.App); !d.IsZero() && at.Sub(d) < r.Learning {
				continue // learned, not counted
			}
		}
		c := g.counters[r.Name]
		if c == nil {
			continue
		}
		if f, fire := c.add(target, e, n, now); fire {
			g.fire(r, target, f, now)
		}
	}
}

func counts(r Rule, s Signal) bool {
	for _, x := range r.Signals {
		if x == s {
			return true
		}
	}
	return false
}
