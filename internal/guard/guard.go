// Package guard owns the guard's signals, windows, rules and blocks
// (docs/guard.md): the gateway tells it of authentication failures and of
// requests for paths no route declares; a rule that sees more than its
// threshold of one signal from one address within its window blocks the
// address for the rule's duration; the gateway asks it, on every request,
// whether the client's address is blocked.
//
// Counting is per server and in memory. Blocks are shared: each is one
// record in a key-value bucket every server on the NATS reads, and each
// server keeps its own copy of the current blocks, refreshed every
// Refresh interval, so the per-request check is a map lookup and never a
// round trip. A signal never waits: it goes through a bounded queue and is
// dropped (and counted) when the queue is full.
//
// The guard never sees a credential: a signal is a kind and an address.
package guard

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Defaults of Config.
const (
	DefaultMaxAddresses = 10000
	DefaultRefresh      = time.Second
	// queueSize bounds signals waiting to be counted.
	queueSize = 4096
	// storeTimeout bounds one write or refresh of the shared blocks.
	storeTimeout = 5 * time.Second
)

// Config wires a Guard.
type Config struct {
	// Store holds the blocks every server shares; nil keeps them on this
	// server only (tests).
	Store  Store
	Logger *slog.Logger
	// Rules replaces DefaultRules when not nil; an empty, non-nil slice
	// counts nothing and blocks nothing.
	Rules []Rule
	// MaxAddresses bounds the addresses each rule counts at once
	// (default DefaultMaxAddresses); beyond it the least recently seen
	// is forgotten.
	MaxAddresses int
	// Refresh is how often the shared blocks are read again (default
	// DefaultRefresh): how long a block placed or lifted on another
	// server takes to reach this one.
	Refresh time.Duration
	// OnBlock, when set, is told of every block this server places (the
	// metric).
	OnBlock func(rule string)
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Guard counts signals and holds the blocks. Its methods are safe for
// concurrent use.
type Guard struct {
	cfg     Config
	log     *slog.Logger
	windows map[Signal][]*window // owned by run

	queue   chan note
	dropped atomic.Int64

	// blocks is this server's copy of the current blocks by address,
	// replaced whole on every change so Blocked reads it without a lock.
	blocks atomic.Pointer[map[string]Block]
	mu     sync.Mutex       // serializes changes of blocks and pending
	known  map[string]Block // by id, what the store held at the last refresh
	// pending are blocks placed here whose write to the store failed:
	// enforced here, written again at every refresh.
	pending map[string]Block

	refresh   *periodic.Loop
	stop      chan struct{}
	done      chan struct{}
	started   atomic.Bool
	closeOnce sync.Once
}

type note struct {
	sig    Signal
	remote string
}

// New returns a guard that counts nothing until Open.
func New(cfg Config) *Guard {
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules()
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
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
	g := &Guard{cfg: cfg, log: cfg.Logger, windows: map[Signal][]*window{}, queue: make(chan note, queueSize),
		known: map[string]Block{}, pending: map[string]Block{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, r := range cfg.Rules {
		if r.Validate() != nil || r.Disabled || r.GroupBy != ByAddress {
			continue // validated by the server's configuration; never fires
		}
		for _, sig := range r.Signals {
			g.windows[sig] = append(g.windows[sig], newWindow(r, cfg.MaxAddresses))
		}
	}
	empty := map[string]Block{}
	g.blocks.Store(&empty)
	return g
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
// Proxies.ClientAddress gives it (or an http.Request's RemoteAddr). It
// never blocks: when the queue is full the signal is dropped and counted
// (Dropped).
func (g *Guard) Note(sig Signal, remote string) {
	if len(g.windows[sig]) == 0 {
		return
	}
	select {
	case g.queue <- note{sig, remote}:
	default:
		g.dropped.Add(1)
	}
}

// Dropped is how many signals a full queue has dropped.
func (g *Guard) Dropped() int64 { return g.dropped.Load() }

// Blocked reports whether addr, as Proxies.ClientAddress gives it (an
// IPv4 address or an IPv6 /64), is blocked now. It is a map lookup on this
// server's copy of the blocks.
func (g *Guard) Blocked(addr string) bool {
	m := *g.blocks.Load()
	if len(m) == 0 {
		return false
	}
	b, ok := m[addr]
	return ok && g.cfg.Now().Before(b.Expires)
}

// HasBlocks reports whether any block is in force on this server: an
// atomic load, so a request need not work out its client's address while
// nothing is blocked, the usual state.
func (g *Guard) HasBlocks() bool { return len(*g.blocks.Load()) > 0 }

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
	for {
		select {
		case <-g.stop:
			return
		case n := <-g.queue:
			g.count(n)
		}
	}
}

// count applies every rule of the signal's kind to one signal.
func (g *Guard) count(n note) {
	addr := Address(AddressOf(n.remote))
	if g.Blocked(addr) {
		return // counted again once the block ends
	}
	now := g.cfg.Now()
	for _, w := range g.windows[n.sig] {
		if count, fire := w.add(addr, now); fire {
			g.place(w.rule, addr, count, now)
			return
		}
	}
}
