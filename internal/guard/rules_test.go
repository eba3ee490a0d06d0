package guard

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// alerts collects what OnAlert is given.
type alerts struct {
	mu  sync.Mutex
	got []Alert
}

func (a *alerts) add(al Alert) { a.mu.Lock(); a.got = append(a.got, al); a.mu.Unlock() }
func (a *alerts) list() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Alert(nil), a.got...)
}

// waitFor polls cond for up to five seconds: the counting goroutine acts
// on its own time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits until the queue is empty and one more event was counted,
// so "nothing happened" is not just "not yet".
func settle(t *testing.T, g *Guard) {
	t.Helper()
	waitFor(t, "the queue to drain", func() bool { return len(g.queue) == 0 })
	time.Sleep(20 * time.Millisecond)
}

func openGuard(t *testing.T, cfg Config) *Guard {
	t.Helper()
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Millisecond // settle waits 20 ms
	}
	g := New(cfg)
	if err := g.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func TestKeyAbuseSuspendsTheKey(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var al alerts
	r := Rule{Name: RuleKeyAbuse, Signals: []Signal{AuthFailure, RateLimited}, GroupBy: ByKey, Threshold: 3, Window: time.Minute,
		Then: []Action{{ActSuspendKey, 10 * time.Minute}}}
	g := openGuard(t, Config{Store: ttlStore{memkv.New()}, Now: c.now, Refresh: time.Hour, Rules: []Rule{r}, OnAlert: al.add})
	// Failures and refusals of one key from many addresses add up; an
	// event without a key counts for nobody.
	g.Observe(Event{Signal: AuthFailure, Remote: "192.0.2.1:1", Key: "k1"})
	g.Observe(Event{Signal: RateLimited, Remote: "192.0.2.2:1", Key: "k1"})
	g.Observe(Event{Signal: AuthFailure, Remote: "192.0.2.3:1"})
	g.Observe(Event{Signal: AuthFailure, Remote: "192.0.2.3:1", Key: "k2"})
	g.Observe(Event{Signal: RateLimited, Remote: "192.0.2.4:1", Key: "k1"})
	settle(t, g)
	if g.Suspended("k1") {
		t.Fatal("suspended at the threshold; the rule fires above it")
	}
	g.Observe(Event{Signal: AuthFailure, Remote: "192.0.2.5:1", Key: "k1"})
	waitFor(t, "k1 suspended", func() bool { return g.Suspended("k1") })
	if g.Suspended("k2") || g.Blocked("192.0.2.1") {
		t.Fatal("another key or an address was hit")
	}
	waitFor(t, "the alert", func() bool { return len(al.list()) == 1 })
	a := al.list()[0]
	if a.Rule != RuleKeyAbuse || a.Target != "k1" || a.GroupBy != "key" || a.Count != 4 || len(a.Blocks) != 1 ||
		!strings.Contains(a.Message, "suspend_key for 10m0s") {
		t.Fatalf("alert %+v", a)
	}
	blocks, err := g.Blocks(context.Background())
	if err != nil || len(blocks) != 1 || blocks[0].Kind != KindKey || blocks[0].Target != "k1" || blocks[0].ID != a.Blocks[0] {
		t.Fatalf("blocks %+v, %v", blocks, err)
	}
	c.add(10 * time.Minute)
	if g.Suspended("k1") {
		t.Fatal("the suspension did not expire")
	}
}

func TestCompromisedFunctionQuarantinedOneAlertPerIncident(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var al alerts
	r := Rule{Name: RuleCompromisedFunction, Signals: []Signal{PermissionDenied}, GroupBy: ByFunction, Threshold: 2, Window: time.Minute,
		Then: []Action{{ActAlert, time.Hour}, {ActQuarantine, 5 * time.Minute}}}
	store := ttlStore{memkv.New()}
	g := openGuard(t, Config{Store: store, Now: c.now, Refresh: time.Hour, Rules: []Rule{r}, OnAlert: al.add})
	// A second server on the same store: its incident is the same one.
	other := openGuard(t, Config{Store: store, Now: c.now, Refresh: time.Hour, Rules: []Rule{r}, OnAlert: al.add})
	deny := func(g *Guard, fn string) {
		for range 3 {
			g.Observe(Event{Signal: PermissionDenied, App: "diary", Function: fn})
		}
	}
	deny(g, "thumb")
	waitFor(t, "quarantine", func() bool { return g.Quarantined("diary", "thumb") })
	if g.Quarantined("diary", "save") || g.Quarantined("other", "thumb") {
		t.Fatal("another function quarantined")
	}
	waitFor(t, "the alert", func() bool { return len(al.list()) == 1 })
	// The other server fires too (its own count), but the incident is
	// open: no second alert. It enforces the quarantine it placed.
	deny(other, "thumb")
	waitFor(t, "quarantine on the other server", func() bool { return other.Quarantined("diary", "thumb") })
	settle(t, other)
	time.Sleep(50 * time.Millisecond)
	if n := len(al.list()); n != 1 {
		t.Fatalf("%d alerts for one incident", n)
	}
	// Lifting the quarantine ends the incident: firing again alerts again.
	b, err := g.Lift(ctx, al.list()[0].Blocks[0])
	if err != nil || b.Kind != KindQuarantine || b.Target != "diary/thumb" {
		t.Fatalf("lift: %+v %v", b, err)
	}
	if g.Quarantined("diary", "thumb") {
		t.Fatal("still quarantined after the lift")
	}
	deny(g, "thumb")
	waitFor(t, "a second alert", func() bool { return len(al.list()) == 2 })
	if !g.Quarantined("diary", "thumb") {
		t.Fatal("not quarantined again")
	}
}

func TestAlertOnlyRuleCountsNothingWhileItsIncidentIsOpen(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var al alerts
	r := Rule{Name: "traps", Signals: []Signal{Trap, Timeout}, GroupBy: ByFunction, Threshold: 1, Window: time.Minute,
		Then: []Action{{ActAlert, 10 * time.Minute}}}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{r}, OnAlert: al.add})
	for range 10 {
		g.Observe(Event{Signal: Trap, App: "a", Function: "f"})
		g.Observe(Event{Signal: Timeout, App: "a", Function: "f"})
	}
	waitFor(t, "the alert", func() bool { return len(al.list()) == 1 })
	settle(t, g)
	if n := len(al.list()); n != 1 {
		t.Fatalf("%d alerts within one incident", n)
	}
	if blocks, _ := g.Blocks(context.Background()); len(blocks) != 0 {
		t.Fatalf("an alert-only rule placed %v", blocks)
	}
	c.add(10 * time.Minute)
	g.Observe(Event{Signal: Trap, App: "a", Function: "f"})
	g.Observe(Event{Signal: Trap, App: "a", Function: "f"})
	waitFor(t, "a new incident", func() bool { return len(al.list()) == 2 })
}

func TestSpendSpikeAgainstBaselineThrottles(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	var al alerts
	r := Rule{Name: RuleSpendSpike, Signals: []Signal{Invocation}, GroupBy: ByFunction, Threshold: 20, Window: time.Minute, Baseline: 5,
		Then: []Action{{ActAlert, time.Hour}, {ActThrottle, 15 * time.Minute}}}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{r}, OnAlert: al.add})
	inv := Event{Signal: Invocation, App: "a", Function: "f", Value: 0.01}
	// Fifteen minutes at 10 a minute (the baseline is learnt): a baseline
	// of 10, so the limit is 50.
	for range BaselineWindows {
		for range 10 {
			g.Observe(inv)
		}
		settle(t, g)
		c.add(time.Minute)
	}
	for range 50 {
		g.Observe(inv)
	}
	settle(t, g)
	if len(al.list()) != 0 || g.Throttled("a", "f") {
		t.Fatal("fired at 5x its baseline; it fires above")
	}
	g.Observe(inv)
	waitFor(t, "the spike alert", func() bool { return len(al.list()) == 1 })
	a := al.list()[0]
	if a.Count != 51 || a.Baseline != 10 || !strings.Contains(a.Message, "its average of 10") {
		t.Fatalf("alert %+v", a)
	}
	blocks, _ := g.Blocks(context.Background())
	if len(blocks) != 1 || blocks[0].Kind != KindThrottle || blocks[0].Rate != 50.0/60 {
		t.Fatalf("blocks %+v", blocks)
	}
	// The throttle lets its burst through, then refuses until the bucket
	// refills at the rate (50 a minute).
	if g.Throttled("a", "f") {
		t.Fatal("the first call was refused")
	}
	if !g.Throttled("a", "f") {
		t.Fatal("a second call at the same instant went through a rate below one a second")
	}
	c.add(2 * time.Second)
	if g.Throttled("a", "f") {
		t.Fatal("refused after the bucket refilled")
	}
	if g.Throttled("a", "g") {
		t.Fatal("another function throttled")
	}
}

func TestGBSecondsAgainstAThreshold(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	var al alerts
	r := Rule{Name: "gbs", Signals: []Signal{Invocation}, GroupBy: ByFunction, Threshold: 2, Window: time.Minute,
		GBSeconds: true, Then: []Action{{ActAlert, time.Hour}}}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{r}, OnAlert: al.add})
	// No baseline: the threshold alone decides, in GB-seconds.
	for range 4 {
		g.Observe(Event{Signal: Invocation, App: "a", Function: "f", Value: 0.5})
	}
	settle(t, g)
	if len(al.list()) != 0 {
		t.Fatal("fired at 2 GB-seconds, the floor")
	}
	g.Observe(Event{Signal: Invocation, App: "a", Function: "f", Value: 0.5})
	waitFor(t, "the alert", func() bool { return len(al.list()) == 1 })
	if a := al.list()[0]; a.Count != 2.5 || !strings.Contains(a.Message, "GB-seconds") {
		t.Fatalf("alert %+v", a)
	}
}

func TestBucketsBaselineForgetsOldWindows(t *testing.T) {
	r := Rule{Name: "r", Signals: []Signal{Invocation}, GroupBy: ByFunction, Threshold: 0, Window: time.Minute, Baseline: 2}
	b := newBuckets(r, 2)
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	e := &Event{Signal: Invocation}
	// 100 in the first minute: no fire while the baseline is learnt.
	// Then an hour of silence: the past is all zero windows, learnt.
	for range 100 {
		if _, fire := b.add("f", e, 1, t0); fire {
			t.Fatal("fired while learning its baseline")
		}
	}
	f, fire := b.add("f", e, 1, t0.Add(time.Hour))
	if !fire || f.baseline != 0 {
		t.Fatalf("after an hour: fire %v baseline %v", fire, f.baseline)
	}
	// It fires once per window, however many more come.
	if _, fire := b.add("f", e, 1, t0.Add(time.Hour)); fire {
		t.Fatal("fired twice in one window")
	}
	// Eviction: a third target forgets the least recent.
	b.add("g", e, 1, t0.Add(time.Hour))
	b.add("h", e, 1, t0.Add(time.Hour))
	if b.tracked() != 2 {
		t.Fatalf("tracking %d targets, max 2", b.tracked())
	}
}

func TestNewEdgeAfterLearningWindow(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	deployed := c.now()
	var al alerts
	r := Rule{Name: RuleNewCallPath, Signals: []Signal{NewEdge}, GroupBy: ByEdge, Threshold: 0, Window: time.Minute,
		Learning: 10 * time.Minute, Then: []Action{{ActAlert, time.Hour}}}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{r}, OnAlert: al.add,
		DeployedAt: func(app string) time.Time {
			if app == "diary" {
				return deployed
			}
			return time.Time{}
		}})
	g.Observe(Event{Signal: NewEdge, App: "diary", Function: "save", Edge: "kv save → entries"})
	settle(t, g)
	if len(al.list()) != 0 {
		t.Fatal("an edge within the learning window alerted")
	}
	c.add(11 * time.Minute)
	g.Observe(Event{Signal: NewEdge, App: "diary", Function: "save", Edge: "fetch save → evil.example:443"})
	waitFor(t, "the new-edge alert", func() bool { return len(al.list()) == 1 })
	if a := al.list()[0]; a.Target != "diary: fetch save → evil.example:443" || a.Rule != RuleNewCallPath {
		t.Fatalf("alert %+v", a)
	}
}

func TestSetRulesReplacesTheRulesInForce(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{}})
	g.Note(AuthFailure, "192.0.2.1:1")
	settle(t, g)
	if g.Dropped() != 0 || g.HasBlocks() {
		t.Fatal("counted without rules")
	}
	r := Rule{Name: RuleBruteForce, Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 1, Window: time.Minute,
		Then: []Action{{ActBlockAddress, time.Minute}}}
	if err := g.SetRules([]Rule{r}); err != nil {
		t.Fatal(err)
	}
	if got := g.Rules(); len(got) != 1 || got[0].Name != RuleBruteForce {
		t.Fatalf("rules %+v", got)
	}
	g.Note(AuthFailure, "192.0.2.1:1")
	g.Note(AuthFailure, "192.0.2.1:1")
	waitBlocked(t, g, "192.0.2.1")
	bad := r
	bad.Window = 0
	if err := g.SetRules([]Rule{bad}); !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("an invalid rule: %v", err)
	}
	if got := g.Rules(); len(got) != 1 || got[0].Window != time.Minute {
		t.Fatal("an invalid set replaced the rules")
	}
	disabled := Rule{Name: RuleBruteForce, Disabled: true}
	if err := g.SetRules([]Rule{disabled}); err != nil || len(g.Rules()) != 0 {
		t.Fatalf("disabled: %v %v", err, g.Rules())
	}
}

func TestDisabledRouteAndAddressTargets(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	r := Rule{Name: "hot_route", Signals: []Signal{SchemaViolation}, GroupBy: ByRoute, Threshold: 1, Window: time.Minute,
		Then: []Action{{ActDisableRoute, time.Minute}}}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{r}, Logger: slog.New(slog.DiscardHandler)})
	g.Observe(Event{Signal: SchemaViolation, App: "a", Function: "f", Route: "POST /entries"})
	g.Observe(Event{Signal: SchemaViolation, App: "a", Function: "f"}) // no route: not counted
	settle(t, g)
	if g.RouteDisabled("a", "POST /entries") {
		t.Fatal("disabled at the threshold")
	}
	g.Observe(Event{Signal: SchemaViolation, App: "a", Function: "f", Route: "POST /entries"})
	waitFor(t, "the route disabled", func() bool { return g.RouteDisabled("a", "POST /entries") })
	if g.RouteDisabled("a", "GET /entries") || g.RouteDisabled("b", "POST /entries") {
		t.Fatal("another route disabled")
	}
}

func TestRuleValidationNamesTheField(t *testing.T) {
	ok := Rule{Name: "r", Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 1, Window: time.Minute,
		Then: []Action{{ActBlockAddress, time.Minute}}}
	for field, mut := range map[string]func(*Rule){
		"name":             func(r *Rule) { r.Name = "Brute-Force" },
		"when.signal":      func(r *Rule) { r.Signals = nil },
		"when.group_by":    func(r *Rule) { r.GroupBy = "country" },
		"when.threshold":   func(r *Rule) { r.Threshold = MaxThreshold + 1 },
		"when.window":      func(r *Rule) { r.Window = 48 * time.Hour },
		"when.baseline":    func(r *Rule) { r.Baseline = 3 }, // needs group_by function
		"when.measure":     func(r *Rule) { r.GBSeconds = true },
		"when.learning":    func(r *Rule) { r.Learning = time.Minute },
		"then":             func(r *Rule) { r.Then = nil },
		"then[0].action":   func(r *Rule) { r.Then[0].Kind = ActSuspendKey }, // needs group_by key
		"then[0].duration": func(r *Rule) { r.Then[0].Duration = 0 },
		"then[1].action":   func(r *Rule) { r.Then = append(r.Then, r.Then[0]) },
	} {
		r := ok
		r.Then = append([]Action(nil), ok.Then...)
		mut(&r)
		var fe *FieldError
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWeakeningsAndMerge(t *testing.T) {
	defaults := DefaultRules()
	stronger := []Rule{{Name: RuleBruteForce, Signals: []Signal{AuthFailure, RateLimited}, GroupBy: ByAddress, Threshold: 5,
		Window: 5 * time.Minute, Then: []Action{{ActAlert, time.Hour}, {ActBlockAddress, time.Hour}}}}
	if w := Weakenings(defaults, Merge(defaults, stronger)); len(w) != 0 {
		t.Fatalf("a stronger rule weakens: %v", w)
	}
	weaker := []Rule{
		{Name: RuleBruteForce, Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 100, Window: 10 * time.Second,
			Then: []Action{{ActBlockAddress, time.Minute}}},
		{Name: RuleShadowAPI, Disabled: true},
		{Name: RuleSpendSpike, Signals: []Signal{Invocation}, GroupBy: ByFunction, Threshold: 600, Window: time.Minute, Baseline: 20,
			Then: []Action{{ActAlert, time.Hour}}},
		{Name: "extra", Signals: []Signal{Trap}, GroupBy: ByFunction, Threshold: 1, Window: time.Minute, Then: []Action{{ActAlert, time.Hour}}},
	}
	merged := Merge(defaults, weaker)
	if len(merged) != len(defaults)+1 || merged[len(merged)-1].Name != "extra" {
		t.Fatalf("merge: %+v", merged)
	}
	got := strings.Join(Weakenings(defaults, merged), "\n")
	for _, want := range []string{
		"brute_force: threshold raised from 20 to 100", "brute_force: window shortened from 1m0s to 10s",
		"brute_force: block_address shortened from 15m0s to 1m0s", "shadow_api: disabled",
		"spend_spike: baseline raised from 10x to 20x", "spend_spike: no longer does throttle",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("weakenings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "extra") {
		t.Error("an added rule is not a weakening")
	}
}

func TestStoreConflictOpensIncidentOnce(t *testing.T) {
	// Two guards with their own memory but one store: the incident record
	// is created once, so one alert.
	store := ttlStore{memkv.New()}
	a := Alert{ID: incidentID("r", "t"), Until: time.Now().Add(time.Hour)}
	g1, g2 := New(Config{Store: store}), New(Config{Store: store})
	ctx := context.Background()
	if !g1.openIncident(ctx, a, time.Hour) {
		t.Fatal("the first open did not open")
	}
	if g2.openIncident(ctx, a, time.Hour) {
		t.Fatal("the second server opened it again")
	}
	if _, _, err := store.Get(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	g1.endIncident(ctx, "r", "t")
	if _, _, err := store.Get(ctx, a.ID); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("ended incident still stored: %v", err)
	}
}

func TestInvocationsAreCountedInBatches(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	var al alerts
	// A sliding-window rule on invocations: a batch of many at one tick
	// fires it once, and counts no further while its incident is open.
	r := Rule{Name: "busy", Signals: []Signal{Invocation}, GroupBy: ByFunction, Threshold: 100, Window: time.Minute,
		Then: []Action{{ActAlert, time.Hour}}}
	g := openGuard(t, Config{Now: c.now, Rules: []Rule{r}, OnAlert: al.add, Tick: time.Hour})
	for range 1000 {
		g.Observe(Event{Signal: Invocation, App: "a", Function: "f", Value: 0.001})
	}
	if len(g.queue) != 0 {
		t.Fatal("invocations went through the queue")
	}
	g.drainOnCounter(t)
	waitFor(t, "the alert", func() bool { return len(al.list()) == 1 })
	if a := al.list()[0]; a.Count != 101 {
		t.Fatalf("alert %+v", a)
	}
}

// drainOnCounter takes the invocation counters now, as a tick would. Only
// for a guard whose tick never comes and whose queue stays empty: then the
// counters are nobody else's.
func (g *Guard) drainOnCounter(t *testing.T) {
	t.Helper()
	g.drainSpend()
}
