package schedule

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/manifest"
)

// scheduler is a Scheduler that only claims: what fire asks before it runs.
func scheduler(t *testing.T, ticks Ticks, logs *logbuf.Buffer) *Scheduler {
	t.Helper()
	s := New(nil, nil, slog.New(slog.NewJSONHandler(logs, nil)), ticks)
	t.Cleanup(s.Close)
	return s
}

func parsed(t *testing.T, expr string) run {
	t.Helper()
	sched, err := manifest.ParseCron(expr)
	if err != nil {
		t.Fatal(err)
	}
	r := run{app: "shop", function: "report", expr: expr}
	_, r.period = aligned(sched)
	return r
}

// Two servers on one store: each tick is claimed by exactly one of them,
// whichever of them reaches it first and however late the other runs
// within the period; the next tick is claimed anew.
func TestClaimOncePerTick(t *testing.T) {
	store := memkv.New()
	a, b := scheduler(t, store, logbuf.New()), scheduler(t, store, logbuf.New())
	r := parsed(t, "@every 10s")
	tick := time.Date(2030, 1, 2, 3, 4, 50, 0, time.UTC)
	if !a.claim(r, tick.Add(3*time.Millisecond), "a1") {
		t.Fatal("the first server's claim of a tick nobody claimed failed")
	}
	if b.claim(r, tick.Add(900*time.Millisecond), "b1") {
		t.Fatal("the second server ran a tick the first had claimed")
	}
	if a.claim(r, tick.Add(9*time.Second), "a2") {
		t.Fatal("a run late within its period claimed its tick again")
	}
	if !b.claim(r, tick.Add(10*time.Second+time.Millisecond), "b2") {
		t.Fatal("the next tick could not be claimed")
	}
	// Another trigger, function, app or expression is another key.
	for _, other := range []run{
		{app: "shop", function: "report", trigger: 1, expr: r.expr, period: r.period},
		{app: "shop", function: "audit", expr: r.expr, period: r.period},
		{app: "shop2", function: "report", expr: r.expr, period: r.period},
		{app: "shop", function: "report", expr: "@every 5s", period: 5 * time.Second},
	} {
		if !b.claim(other, tick, "x") {
			t.Errorf("%+v shares a key with %+v", other, r)
		}
	}
	if got := string(store.Contents()[tickKey(r, tick)]); got != "a1" {
		t.Errorf("the claim holds %q, want the run's request id a1", got)
	}
}

// A claim the store cannot make skips the run (fails closed) and says so.
func TestClaimFailsClosed(t *testing.T) {
	store := memkv.New()
	logs := logbuf.New()
	s := scheduler(t, store, logs)
	store.SetFail(errors.New("no quorum"))
	if s.claim(parsed(t, "*/5 * * * *"), time.Now(), "r1") {
		t.Fatal("a run went ahead without its claim")
	}
	lines := logs.Lines(`"msg":"scheduled run skipped"`, `"reason":"tick not claimed"`, `"request_id":"r1"`, "no quorum")
	if len(lines) != 1 {
		t.Fatalf("want one line saying the run was skipped and why, got:\n%s", logs.String())
	}
}

// Without a store, every tick runs here.
func TestClaimWithoutTicks(t *testing.T) {
	s := scheduler(t, nil, logbuf.New())
	r := parsed(t, "@every 1s")
	now := time.Now()
	if !s.claim(r, now, "a") || !s.claim(r, now, "b") {
		t.Fatal("a scheduler without a store skipped a run")
	}
}

// "@every D" fires at the multiples of D whenever its runner started, so
// servers started apart share their ticks; a cron expression's ticks are
// named by their minute.
func TestAligned(t *testing.T) {
	sched, err := manifest.ParseCron("@every 1m30s")
	if err != nil {
		t.Fatal(err)
	}
	s, period := aligned(sched)
	if period != 90*time.Second {
		t.Fatalf("period %s, want 1m30s", period)
	}
	base := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC).Truncate(period)
	for _, started := range []time.Duration{0, time.Millisecond, 17 * time.Second, 89*time.Second + 999*time.Millisecond} {
		if got := s.Next(base.Add(started)); !got.Equal(base.Add(period)) {
			t.Errorf("started %s after a tick: next %s, want %s", started, got, base.Add(period))
		}
	}
	// The runner asks for the next after each run: every multiple, none skipped.
	if got := s.Next(base.Add(period)); !got.Equal(base.Add(2 * period)) {
		t.Errorf("after a tick: next %s, want %s", got, base.Add(2*period))
	}
	// Under a second is a second (ParseCron), aligned too.
	sched, err = manifest.ParseCron("@every 200ms")
	if err != nil {
		t.Fatal(err)
	}
	if _, period := aligned(sched); period != time.Second {
		t.Errorf("@every 200ms: period %s, want 1s", period)
	}

	sched, err = manifest.ParseCron("*/5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	s, period = aligned(sched)
	if period != time.Minute || s != sched {
		t.Fatalf("a cron expression: period %s and schedule %T, want a minute and the same schedule", period, s)
	}
	r := run{app: "a", function: "f", expr: "*/5 * * * *", period: period}
	at := time.Date(2030, 1, 2, 3, 5, 0, 0, time.UTC)
	if tickKey(r, at.Add(2*time.Millisecond).Truncate(period)) != tickKey(r, at.Add(40*time.Second).Truncate(period)) {
		t.Error("two runs within a cron expression's minute name different ticks")
	}
}

// A claim cut short by Close skips the run quietly: the server is
// stopping, nothing failed.
func TestClaimHonoursClose(t *testing.T) {
	logs := logbuf.New()
	s := New(nil, nil, slog.New(slog.NewJSONHandler(logs, nil)), blocking{})
	s.Close()
	if s.claim(parsed(t, "@every 1s"), time.Now(), "r") {
		t.Fatal("a claim ran after Close")
	}
	if len(logs.Lines("scheduled run skipped")) != 0 {
		t.Errorf("a claim cut short by Close was logged as a failure:\n%s", logs.String())
	}
}

// blocking is a store that answers when the caller gives up.
type blocking struct{}

func (blocking) Create(ctx context.Context, _ string, _ []byte) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
