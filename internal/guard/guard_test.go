package guard

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// ttlStore is memkv with CreateTTL: the TTL is ignored, which the guard
// does not need (it enforces a block's own Expires).
type ttlStore struct{ *memkv.Store }

func (s ttlStore) CreateTTL(ctx context.Context, key string, v []byte, _ time.Duration) (uint64, error) {
	return s.Create(ctx, key, v)
}

// clock is a settable time for the guard's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestWindowFiresOnMoreThanThresholdWithinWindow(t *testing.T) {
	r := Rule{Name: "r", Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 3, Window: time.Minute, Then: []Action{{ActBlockAddress, time.Hour}}}
	w := newWindow(r, 10)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if _, fire := w.add("a", t0.Add(time.Duration(i)*time.Second)); fire {
			t.Fatalf("fired at signal %d, threshold 3", i+1)
		}
	}
	count, fire := w.add("a", t0.Add(59*time.Second))
	if !fire || count != 4 {
		t.Fatalf("4th signal within a minute: fire=%v count=%d, want true 4", fire, count)
	}
	if w.tracked() != 0 {
		t.Errorf("a fired address is still counted")
	}
}

// Signals spread so that no Threshold+1 of them fall within one window
// never fire, however many there are: the window slides, it has no
// buckets to straddle.
func TestWindowSlides(t *testing.T) {
	r := Rule{Name: "r", Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 3, Window: time.Minute, Then: []Action{{ActBlockAddress, time.Hour}}}
	w := newWindow(r, 10)
	t0 := time.Unix(1000, 0)
	for i := range 100 {
		// 3 signals per 61 s: at most 3 within any minute.
		at := t0.Add(time.Duration(i/3)*61*time.Second + time.Duration(i%3)*time.Second)
		if _, fire := w.add("a", at); fire {
			t.Fatalf("fired at signal %d with at most 3 per minute", i+1)
		}
	}
	// Straddling a minute boundary: 2 at :59 and 2 at :00 fire.
	w2 := newWindow(r, 10)
	base := time.Unix(60*100, 0)
	for i, at := range []time.Time{base.Add(-2 * time.Second), base.Add(-time.Second), base, base.Add(time.Second)} {
		_, fire := w2.add("a", at)
		if fire != (i == 3) {
			t.Fatalf("signal %d: fire=%v", i+1, fire)
		}
	}
}

func TestWindowCountsAddressesApartAndEvictsTheLeastRecent(t *testing.T) {
	r := Rule{Name: "r", Signals: []Signal{RouteMiss}, GroupBy: ByAddress, Threshold: 5, Window: time.Minute, Then: []Action{{ActBlockAddress, time.Hour}}}
	w := newWindow(r, 3)
	t0 := time.Unix(1000, 0)
	for _, a := range []string{"a", "b", "c"} {
		w.add(a, t0)
		w.add(a, t0)
	}
	w.add("a", t0) // a is now the most recent; b the least
	if _, fire := w.add("d", t0); fire {
		t.Fatal("a new address fired")
	}
	if w.tracked() != 3 {
		t.Fatalf("tracked %d addresses, cap 3", w.tracked())
	}
	if _, ok := w.addrs["b"]; ok {
		t.Fatal("b, the least recently seen, was not evicted")
	}
	// b starts again from zero: five more do not fire.
	for range 5 {
		if _, fire := w.add("b", t0); fire {
			t.Fatal("evicted b kept its count")
		}
	}
	// a kept its count (3 signals): the third more fires.
	w.add("a", t0)
	w.add("a", t0)
	if _, fire := w.add("a", t0); !fire {
		t.Fatal("a lost its count to eviction")
	}
}

func TestWindowThresholdZeroFiresOnFirst(t *testing.T) {
	w := newWindow(Rule{Threshold: 0, Window: time.Minute}, 2)
	if _, fire := w.add("a", time.Unix(1, 0)); !fire {
		t.Fatal("threshold 0 must fire on the first signal")
	}
}

func TestAddressOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":     "192.0.2.1",
		"[2001:db8::1]:5000": "2001:db8::1",
		"192.0.2.9":          "192.0.2.9",
		"":                   "",
	} {
		if got := AddressOf(in); got != want {
			t.Errorf("AddressOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// newTestGuard opens a guard with low thresholds on store at clock c.
func newTestGuard(t *testing.T, store Store, c *clock, logs *logbuf.Buffer, onBlock func(string)) *Guard {
	t.Helper()
	g := New(Config{Store: store, Now: c.now, Refresh: time.Hour, OnBlock: onBlock,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Rules: []Rule{
			{Name: RuleBruteForce, Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 3, Window: time.Minute, Then: []Action{{ActBlockAddress, 15 * time.Minute}}},
			{Name: RuleShadowAPI, Signals: []Signal{RouteMiss}, GroupBy: ByAddress, Threshold: 5, Window: time.Minute, Then: []Action{{ActBlockAddress, 15 * time.Minute}}},
		}})
	if err := g.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// waitBlocked waits for the counting goroutine to block addr.
func waitBlocked(t *testing.T, g *Guard, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !g.Blocked(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not blocked", addr)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGuardBlocksSharesAndLifts(t *testing.T) {
	ctx := context.Background()
	store := ttlStore{memkv.New()}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	logs := logbuf.New()
	var placed []string
	var mu sync.Mutex
	g := newTestGuard(t, store, c, logs, func(rule string) { mu.Lock(); placed = append(placed, rule); mu.Unlock() })
	other := newTestGuard(t, store, c, logbuf.New(), nil)

	for range 3 {
		g.Note(AuthFailure, "192.0.2.7:4000")
		g.Note(RouteMiss, "192.0.2.8:4000") // other rule, other address: below its threshold
	}
	g.Note(AuthFailure, "192.0.2.7:4001") // the 4th from the same address, another port
	waitBlocked(t, g, "192.0.2.7")
	if g.Blocked("192.0.2.8") || g.Blocked("192.0.2.70") {
		t.Fatal("an address that sent too little, or a neighbour, is blocked")
	}
	line := logs.Messages("guard blocked address")
	if len(line) != 1 {
		t.Fatalf("%d block lines, want 1:\n%s", len(line), logs)
	}
	for k, want := range map[string]any{"security": true, "alert": true, "rule": RuleBruteForce, "remote": "192.0.2.7", "count": 4.0, "window": "1m0s"} {
		if line[0][k] != want {
			t.Errorf("block line %s = %v, want %v", k, line[0][k], want)
		}
	}
	mu.Lock()
	if len(placed) != 1 || placed[0] != RuleBruteForce {
		t.Errorf("OnBlock told %v", placed)
	}
	mu.Unlock()

	// The other server enforces it after its refresh, without counting.
	if other.Blocked("192.0.2.7") {
		t.Fatal("the other server knew before reading the store")
	}
	if err := other.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !other.Blocked("192.0.2.7") {
		t.Fatal("the other server does not enforce the shared block")
	}
	blocks, err := other.Blocks(ctx)
	if err != nil || len(blocks) != 1 {
		t.Fatalf("Blocks = %v, %v", blocks, err)
	}
	b := blocks[0]
	if b.Kind != KindAddress || b.Target != "192.0.2.7" || b.Rule != RuleBruteForce || !b.Expires.Equal(c.now().Add(15*time.Minute)) || b.ID == "" {
		t.Errorf("block = %+v", b)
	}

	// Lifted on the other server: gone there at once, here at refresh.
	if _, err := other.Lift(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if other.Blocked("192.0.2.7") {
		t.Fatal("still blocked where it was lifted")
	}
	if err := g.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if g.Blocked("192.0.2.7") {
		t.Fatal("still blocked on the first server after its refresh")
	}
	if _, err := g.Lift(ctx, b.ID); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("lifting a lifted block: %v, want ErrNotFound", err)
	}

	// Counting starts afresh after a block: 3 more are not enough, 4 are.
	for range 3 {
		g.Note(AuthFailure, "192.0.2.7:1")
	}
	time.Sleep(50 * time.Millisecond)
	if g.Blocked("192.0.2.7") {
		t.Fatal("blocked again below the threshold")
	}
	g.Note(AuthFailure, "192.0.2.7:1")
	waitBlocked(t, g, "192.0.2.7")
}

func TestGuardBlockExpires(t *testing.T) {
	ctx := context.Background()
	store := ttlStore{memkv.New()}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	g := newTestGuard(t, store, c, logbuf.New(), nil)
	for range 6 {
		g.Note(RouteMiss, "[2001:db8::5]:80")
	}
	waitBlocked(t, g, "2001:db8::/64")
	c.add(15*time.Minute - time.Second)
	if !g.Blocked("2001:db8::/64") {
		t.Fatal("unblocked before 15 minutes")
	}
	c.add(time.Second)
	if g.Blocked("2001:db8::/64") {
		t.Fatal("still blocked after 15 minutes")
	}
	// The store's record, should its TTL not have removed it yet, is not
	// listed or enforced either.
	if blocks, err := g.Blocks(ctx); err != nil || len(blocks) != 0 {
		t.Fatalf("Blocks after expiry = %v, %v", blocks, err)
	}
	// And the address can be blocked again (the expired record replaced).
	for i := range 6 { // another address of the same /64 each time
		g.Note(RouteMiss, "[2001:db8::"+strconv.Itoa(i+10)+"]:80")
	}
	waitBlocked(t, g, "2001:db8::/64")
	fresh := New(Config{Store: store, Now: c.now, Refresh: time.Hour})
	if err := fresh.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if !fresh.Blocked(Proxies(nil).ClientAddress("[2001:db8::99]:1", nil)) {
		t.Fatal("a server opened later does not enforce the renewed block")
	}
}

// A store that fails keeps the block on this server and writes it at a
// later refresh.
func TestGuardKeepsBlockWhenStoreFails(t *testing.T) {
	ctx := context.Background()
	mem := memkv.New()
	c := &clock{t: time.Now()}
	g := newTestGuard(t, ttlStore{mem}, c, logbuf.New(), nil)
	mem.SetFail(aegis.ErrUnavailable)
	for range 4 {
		g.Note(AuthFailure, "192.0.2.1:1")
	}
	waitBlocked(t, g, "192.0.2.1")
	mem.SetFail(nil)
	if len(mem.Contents()) != 0 {
		t.Fatal("written while the store failed")
	}
	if err := g.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if len(mem.Contents()) != 1 || !g.Blocked("192.0.2.1") {
		t.Fatalf("after refresh: store %v, blocked %v", mem.Contents(), g.Blocked("192.0.2.1"))
	}
}

// Note never waits: with nobody counting, signals beyond the queue are
// dropped and counted.
func TestNoteNeverBlocks(t *testing.T) {
	g := New(Config{})
	done := make(chan struct{})
	go func() {
		for i := range queueSize + 100 {
			g.Note(AuthFailure, "192.0.2.1:"+strconv.Itoa(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Note blocked")
	}
	if g.Dropped() != 100 {
		t.Fatalf("dropped %d, want 100", g.Dropped())
	}
	g.Close()
	g.Close()
}

// No rules: nothing is counted, nothing blocked.
func TestNoRulesCountNothing(t *testing.T) {
	g := New(Config{Rules: []Rule{}})
	for range 1000 {
		g.Note(AuthFailure, "192.0.2.1:1")
	}
	if g.Dropped() != 0 || len(g.queue) != 0 {
		t.Fatal("signals queued without a rule")
	}
}

func TestDefaultRules(t *testing.T) {
	want := map[string]Rule{
		RuleBruteForce: {Name: RuleBruteForce, Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 20, Window: time.Minute, Then: []Action{{ActBlockAddress, 15 * time.Minute}}},
		RuleShadowAPI:  {Name: RuleShadowAPI, Signals: []Signal{RouteMiss}, GroupBy: ByAddress, Threshold: 50, Window: time.Minute, Then: []Action{{ActBlockAddress, 15 * time.Minute}}},
	}
	got := DefaultRules()
	for _, r := range got {
		if err := r.Validate(); err != nil {
			t.Errorf("default rule: %v", err)
		}
		if w, ok := want[r.Name]; ok && !reflect.DeepEqual(w, r) {
			t.Errorf("rule %s = %+v, want %+v (docs/guard.md)", r.Name, r, want[r.Name])
		}
	}
}

// The per-request check as the gateway makes it (any block at all? then
// the client's address and the lookup), with no block and with many, for
// an IPv4 and an IPv6 client.
func BenchmarkBlocked(b *testing.B) {
	for _, n := range []int{0, 10000} {
		for _, remote := range []string{"192.0.2.1:54321", "[2001:db8::1]:54321"} {
			name := "blocks=" + strconv.Itoa(n) + "/ipv4"
			if strings.HasPrefix(remote, "[") {
				name = "blocks=" + strconv.Itoa(n) + "/ipv6"
			}
			b.Run(name, func(b *testing.B) {
				g := New(Config{})
				set := &blockSet{m: map[blockKey]Block{}}
				for i := range n {
					addr := "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
					set.add(Block{Kind: KindAddress, Target: addr, Expires: time.Now().Add(time.Hour)})
				}
				g.blocks.Store(set)
				var proxies Proxies // none, as shipped
				b.ReportAllocs()
				for b.Loop() {
					if g.HasBlocks() && g.Blocked(proxies.ClientAddress(remote, nil)) {
						b.Fatal("blocked")
					}
				}
			})
		}
	}
}

// A signal as the gateway sends one, on a failed request: a queue send,
// counted by the guard's goroutine (whose work is the windows', off the
// request's path).
func BenchmarkNote(b *testing.B) {
	g := New(Config{Rules: []Rule{{Name: "r", Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 1 << 30, Window: time.Minute, Then: []Action{{ActBlockAddress, time.Minute}}}}})
	if err := g.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	b.ReportAllocs()
	for b.Loop() {
		g.Note(AuthFailure, "192.0.2.1:54321")
	}
	b.ReportMetric(float64(g.Dropped()), "dropped")
}

func TestAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "2001:db8:1:2::/64",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"fe80::1%eth0":         "fe80::/64",
		"2001:db8:1:2::/64":    "2001:db8:1:2::/64", // already one: unchanged
		"pipe":                 "pipe",
	} {
		if got := Address(in); got != want {
			t.Errorf("Address(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientAddress(t *testing.T) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "192.0.2.10"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:1000", []string{"198.51.100.1"}, "203.0.113.5"},                    // an untrusted peer's header is ignored
		{"10.1.2.3:1000", nil, "10.1.2.3"},                                               // a proxy without the header
		{"10.1.2.3:1000", []string{"198.51.100.1"}, "198.51.100.1"},                      // the proxy's client
		{"10.1.2.3:1000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},             // the client's own claim is not believed
		{"10.1.2.3:1000", []string{"6.6.6.6", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"}, // two proxies, two header lines
		{"192.0.2.10:1000", []string{"[2001:db8::7]:4444"}, "2001:db8::/64"},             // a single trusted address; address and port
		{"10.1.2.3:1000", []string{"garbage, 10.9.9.9"}, "10.9.9.9"},                     // not an address: the last hop believed
		{"10.1.2.3:1000", []string{"10.9.9.9"}, "10.9.9.9"},                              // only proxies: the farthest
		{"[::ffff:10.1.2.3]:1000", []string{"198.51.100.1"}, "198.51.100.1"},             // a v4-mapped peer
	} {
		if got := proxies.ClientAddress(c.remote, c.xff); got != c.want {
			t.Errorf("ClientAddress(%q, %q) = %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
	if got := Proxies(nil).ClientAddress("10.1.2.3:1", []string{"198.51.100.1"}); got != "10.1.2.3" {
		t.Errorf("no trusted proxy: %q", got)
	}
	if _, err := ParseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR parsed")
	}
}

// The guard's cost on every invocation, as dispatch pays it with the
// default rules and no block in force: the quarantine and throttle checks
// and the invocation signal.
func BenchmarkInvocationPath(b *testing.B) {
	g := New(Config{})
	if err := g.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if g.Quarantined("echo", "echo") || g.Throttled("echo", "echo") {
				b.Fatal("stopped")
			}
			if g.Wants(Invocation) {
				g.Observe(Event{Signal: Invocation, App: "echo", Function: "echo", Value: 0.000125})
			}
		}
	})
}
