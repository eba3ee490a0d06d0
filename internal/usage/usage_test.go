package usage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/manifest"
)

// shared opens an embedded NATS listening on loopback and a second
// connection to it, as two servers sharing one NATS would, and returns
// the usage bucket as each sees it.
func shared(t *testing.T) (*jetstream.Bucket, *jetstream.Bucket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seed, err := jetstream.NewClientSeed()
	if err != nil {
		t.Fatal(err)
	}
	a, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClientSeed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	b, err := jetstream.Open(ctx, jetstream.Config{URL: a.ClientURL(), ClientSeed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	opts := jetstream.BucketOptions{History: 1, TTL: Retention}
	ba, err := a.Bucket(ctx, Bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := b.Bucket(ctx, Bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ba, bb
}

func recorder(t *testing.T, s Store, cfg Config) *Recorder {
	t.Helper()
	cfg.Store = s
	cfg.FlushEvery = 20 * time.Millisecond
	r := New(cfg)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func total(t *testing.T, r *Recorder, app string) (inv, rejected int64, gb float64) {
	t.Helper()
	rows, err := r.Rows(context.Background(), time.Now().Add(-time.Hour), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		inv += row.Invocations
		rejected += row.Rejected
		gb += row.GBSeconds
	}
	return inv, rejected, gb
}

// Two servers on one NATS add to the same rows at once: every invocation
// is counted, none overwritten.
func TestTwoRecordersAddConcurrently(t *testing.T) {
	sa, sb := shared(t)
	ra, rb := recorder(t, sa, Config{}), recorder(t, sb, Config{})
	const per = 300
	var wg sync.WaitGroup
	for _, r := range []*Recorder{ra, rb} {
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					origin := []string{"key:alice", "jwt:https://id.example/#u.1", ""}[(g+i)%3]
					r.Done(Ticket{}, Invocation{App: "shop", Function: "orders", Origin: origin}, Used{Memory: 1 << 30, Wall: time.Second, Egress: 10})
					if i%50 == 0 {
						time.Sleep(5 * time.Millisecond) // let flushes interleave with adds
					}
				}
			}()
		}
	}
	wg.Wait()
	ctx := context.Background()
	if err := ra.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := recorder(t, sa, Config{})
	rows, err := r.Rows(ctx, time.Now().Add(-time.Hour), "shop")
	if err != nil {
		t.Fatal(err)
	}
	var inv, egress int64
	var gb float64
	callers := map[string]bool{}
	for _, row := range rows {
		inv, gb, egress = inv+row.Invocations, gb+row.GBSeconds, egress+row.EgressBytes
		callers[row.Caller] = true
	}
	const want = 2 * 6 * per
	if inv != want || egress != want*10 || gb < want-0.001 || gb > want+0.001 {
		t.Fatalf("invocations %d, egress %d, gb-seconds %v; want %d, %d, %d", inv, egress, gb, want, want*10, want)
	}
	if len(callers) != 3 || !callers["public"] || !callers["jwt:https://id.example/#u.1"] || !callers["key:alice"] {
		t.Fatalf("callers %v: the empty origin is public and every origin reads back as written", callers)
	}
}

// Two servers admitting against one hard invocations budget start exactly
// the budget's invocations between them, never one more, and the budget
// stays spent for a server started afterwards.
func TestLeaseNeverOvershoots(t *testing.T) {
	sa, sb := shared(t)
	m := metrics.New()
	ra, rb := recorder(t, sa, Config{Metrics: m}), recorder(t, sb, Config{})
	b := &manifest.Budget{Per: manifest.WindowDay, Invocations: 150}
	inv := Invocation{App: "shop", Function: "orders", FunctionBudget: b}
	var started, refused atomic.Int64
	var wg sync.WaitGroup
	for _, r := range []*Recorder{ra, rb} {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 40 {
					tk, err := r.Admit(context.Background(), inv)
					var ex *ExhaustedError
					switch {
					case err == nil:
						started.Add(1)
						r.Done(tk, inv, Used{Memory: 64 << 20, Wall: time.Millisecond})
					case errors.As(err, &ex):
						refused.Add(1)
					default:
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if started.Load() != 150 || refused.Load() != 2*8*40-150 {
		t.Fatalf("started %d, refused %d; want exactly 150 started", started.Load(), refused.Load())
	}
	_, err := ra.Admit(context.Background(), inv)
	var ex *ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, ErrBudgetExhausted) || !errors.Is(err, aegis.ErrLimitExceeded) {
		t.Fatalf("after the budget: %v", err)
	}
	if ex.Scope != ScopeFunction || ex.App != "shop" || ex.Function != "orders" || ex.Amount != "invocations" ||
		!ex.ResetsAt.Equal(manifest.WindowDay.End(time.Now())) {
		t.Fatalf("refusal %+v", ex)
	}
	ctx := context.Background()
	_ = ra.Close(ctx)
	_ = rb.Close(ctx)

	// A restart keeps the count: the budget is spent in the store.
	r := recorder(t, sa, Config{})
	if _, err := r.Admit(ctx, inv); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("after a restart: %v", err)
	}
	states, err := r.Budgets(ctx, []Spec{{Scope: ScopeFunction, App: "shop", Function: "orders", Budget: *b}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s := states[0]; s.Invocations != 150 || s.Claimed != 150 || !s.Exhausted {
		t.Fatalf("budget state %+v", s)
	}
	if inv, rejected, _ := total(t, r, "shop"); inv != 150 || rejected != 2*8*40-150+2 {
		t.Fatalf("rows: %d invocations, %d rejected", inv, rejected)
	}
	if got := m.UsageInvocations("shop", "orders", "public"); got == 0 || got > 150 {
		t.Fatalf("metric counted %v of server a's invocations", got)
	}

	// Raising the budget (a deploy) lets invocations start again.
	raised := &manifest.Budget{Per: manifest.WindowDay, Invocations: 151}
	if _, err := r.Admit(ctx, Invocation{App: "shop", Function: "orders", FunctionBudget: raised}); err != nil {
		t.Fatalf("after raising the budget: %v", err)
	}
	if _, err := r.Admit(ctx, Invocation{App: "shop", Function: "orders", FunctionBudget: raised}); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("beyond the raised budget: %v", err)
	}
}

// A lease a server holds goes back when it closes, so a budget is not
// lost to a server that stopped.
func TestCloseHandsLeasesBack(t *testing.T) {
	sa, _ := shared(t)
	b := &manifest.Budget{Per: manifest.WindowHour, Invocations: 1000}
	inv := Invocation{App: "shop", Function: "orders", AppBudget: b}
	r := recorder(t, sa, Config{})
	tk, err := r.Admit(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	r.Done(tk, inv, Used{})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	states, err := recorder(t, sa, Config{}).Budgets(context.Background(), []Spec{{Scope: ScopeApp, App: "shop", Budget: *b}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s := states[0]; s.Claimed != 1 || s.Invocations != 1 || s.Exhausted {
		t.Fatalf("after close: %+v", s)
	}
}

// GB-seconds and egress are charged after an invocation: the one that
// crosses the budget runs, the next is refused.
func TestChargedAmounts(t *testing.T) {
	sa, _ := shared(t)
	r := recorder(t, sa, Config{})
	for _, tt := range []struct {
		b      manifest.Budget
		used   Used
		amount string
	}{
		{manifest.Budget{Per: manifest.WindowMonth, GBSeconds: 1.5}, Used{Memory: 1 << 30, Wall: time.Second}, "gb_seconds"},
		{manifest.Budget{Per: manifest.WindowHour, Egress: 1000}, Used{Egress: 600}, "egress"},
	} {
		inv := Invocation{App: "a-" + tt.amount[:1], Function: "f", FunctionBudget: &tt.b}
		for i := range 2 {
			tk, err := r.Admit(context.Background(), inv)
			if err != nil {
				t.Fatalf("%s: invocation %d refused: %v", tt.amount, i, err)
			}
			r.Done(tk, inv, tt.used)
		}
		var ex *ExhaustedError
		if _, err := r.Admit(context.Background(), inv); !errors.As(err, &ex) || ex.Amount != tt.amount {
			t.Fatalf("%s: third invocation: %v", tt.amount, err)
		}
	}
}

// An API key's budget counts every invocation charged to the key, in any
// function of any app.
func TestKeyBudget(t *testing.T) {
	sa, _ := shared(t)
	var lookups atomic.Int64
	r := recorder(t, sa, Config{KeyBudget: func(_ context.Context, name string) (manifest.Quota, error) {
		lookups.Add(1)
		if name == "alice" {
			return manifest.Quota{Count: 2, Per: manifest.WindowDay}, nil
		}
		return manifest.Quota{}, aegis.ErrNotFound
	}})
	ctx := context.Background()
	for i, fn := range []string{"a", "b"} {
		if _, err := r.Admit(ctx, Invocation{App: "app" + fn, Function: fn, Origin: "key:alice"}); err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
	}
	var ex *ExhaustedError
	if _, err := r.Admit(ctx, Invocation{App: "other", Function: "c", Origin: "key:alice"}); !errors.As(err, &ex) || ex.Scope != ScopeKey || ex.Key != "alice" {
		t.Fatalf("third invocation of alice: %v", err)
	}
	for range 5 {
		if _, err := r.Admit(ctx, Invocation{App: "other", Function: "c", Origin: "key:bob"}); err != nil {
			t.Fatalf("bob has no budget: %v", err)
		}
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d key lookups; each key's budget is cached", n)
	}
}

// An alert budget refuses nothing and raises each level once per window,
// however many servers see it reached.
func TestAlertOncePerWindow(t *testing.T) {
	sa, sb := shared(t)
	logs := logbuf.New()
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	m := metrics.New()
	ra, rb := recorder(t, sa, Config{Logger: logger, Metrics: m}), recorder(t, sb, Config{Logger: logger, Metrics: m})
	b := &manifest.Budget{Per: manifest.WindowDay, Invocations: 10, Mode: manifest.BudgetAlert}
	inv := Invocation{App: "shop", Function: "orders", AppBudget: b}
	ctx := context.Background()
	for i := range 14 {
		r := []*Recorder{ra, rb}[i%2]
		tk, err := r.Admit(ctx, inv)
		if err != nil {
			t.Fatalf("invocation %d refused in alert mode: %v", i, err)
		}
		r.Done(tk, inv, Used{})
		if i == 8 || i == 12 {
			_ = ra.Flush(ctx)
			_ = rb.Flush(ctx)
			_ = ra.Flush(ctx) // a sees b's count and finds the alert raised
		}
	}
	_ = ra.Close(ctx)
	_ = rb.Close(ctx)
	alerts := logs.Messages("budget alert")
	if len(alerts) != 2 {
		t.Fatalf("%d alerts, want one at 80 %% and one at 100 %%:\n%s", len(alerts), logs)
	}
	for i, want := range []string{"budget 80% used", "budget 100% used"} {
		a := alerts[i]
		if a["reason"] != want || a["security"] != true || a["app"] != "shop" || a["budget"] != "app" || a["window"] != "day" {
			t.Errorf("alert %d: %v", i, a)
		}
	}
	if m.BudgetAlerts("shop", "", "app", "80") != 1 || m.BudgetAlerts("shop", "", "app", "100") != 1 {
		t.Error("alert metrics")
	}
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"", "public", "key:alice", "jwt:https://id.example/#sub.1", "webhook:stripe", "=", "a.b", "ü"} {
		e := escape(s)
		if !jetstream.ValidKey("u." + e) {
			t.Errorf("escape(%q) = %q is not a key token", s, e)
		}
		if back, err := unescape(e); err != nil || back != s {
			t.Errorf("unescape(escape(%q)) = %q, %v", s, back, err)
		}
	}
	for _, bad := range []string{"=4", "=ZZ", "a="} {
		if _, err := unescape(bad); err == nil {
			t.Errorf("unescape(%q) succeeded", bad)
		}
	}
}

// Row keys are read back from the store: any origin survives the trip.
func FuzzEscape(f *testing.F) {
	f.Add("key:alice")
	f.Add("jwt:https://issuer.example/#a.b=c")
	f.Fuzz(func(t *testing.T, s string) {
		e := escape(s)
		if !jetstream.ValidKey(e) {
			t.Fatalf("escape(%q) = %q is not a key", s, e)
		}
		back, err := unescape(e)
		if err != nil || back != s {
			t.Fatalf("unescape(escape(%q)) = %q, %v", s, back, err)
		}
		_, _ = unescape(s) // never panics on what the store holds
		k := rowStoreKey(rowKey{hour: 490000, app: "a", function: "f", origin: s})
		if _, _, _, o, err := parseRowKey(k); err != nil || o != s {
			t.Fatalf("row key %q reads back %q, %v", k, o, err)
		}
	})
}
