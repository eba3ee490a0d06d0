package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// ErrBudgetExhausted is what an invocation refused by a hard budget fails
// with; the error is an *ExhaustedError naming the budget and when its
// window ends.
var ErrBudgetExhausted = fmt.Errorf("%w: budget exhausted", aegis.ErrLimitExceeded)

// errGone is take's answer for a state forget dropped meanwhile.
var errGone = errors.New("budget state forgotten")

// Budget scopes: whose budget refused.
const (
	ScopeApp      = "app"
	ScopeFunction = "function"
	ScopeKey      = "key"
)

// ExhaustedError says which budget is spent and until when.
type ExhaustedError struct {
	Scope         string // ScopeApp, ScopeFunction or ScopeKey
	App, Function string
	Key           string // the API key's name, for ScopeKey
	Amount        string // "invocations", "gb_seconds" or "egress"
	Window        manifest.Window
	ResetsAt      time.Time
}

func (e *ExhaustedError) Error() string {
	who := e.App
	switch e.Scope {
	case ScopeFunction:
		who = e.App + "/" + e.Function
	case ScopeKey:
		who = "key " + e.Key
	}
	return fmt.Sprintf("%s budget of %s: %s per %s spent until %s", e.Scope, who, e.Amount, e.Window, e.ResetsAt.Format(time.RFC3339))
}

// Unwrap makes the error match ErrBudgetExhausted and aegis.ErrLimitExceeded.
func (e *ExhaustedError) Unwrap() error { return ErrBudgetExhausted }

// BudgetScope and BudgetResetsAt are what httperr writes in the 429 body.
func (e *ExhaustedError) BudgetScope() string       { return e.Scope }
func (e *ExhaustedError) BudgetResetsAt() time.Time { return e.ResetsAt }

// Invocation names what an invocation is charged to and the budgets that
// apply to it (nil: none).
type Invocation struct {
	App, Function, Origin     string
	AppBudget, FunctionBudget *manifest.Budget
}

// Ticket carries the budgets Admit found from Admit to Done. The zero
// Ticket has none.
type Ticket struct {
	states [3]*budgetState
	n      int
}

// budgetID names one budget in memory.
type budgetID struct {
	scope, app, function, key string
}

// budgetState is one budget as this server knows it, for the current
// window: the shared counter as last read, the deltas not yet added to
// it, and the invocations leased from it.
type budgetState struct {
	id budgetID

	mu      sync.Mutex // held across a claim's round trip: claims of one budget queue
	b       manifest.Budget
	per     manifest.Window
	end     time.Time // end of the current window; zero before the first use
	key     string    // the counter's key for the current window
	loaded  bool      // shared has been read in this window
	shared  amounts   // the counter as last read or written
	pending amounts   // used here, not yet added to the counter
	lease   int64     // invocations claimed and not started yet
	leaseOf int64     // the invocation limit the lease was claimed under
	lastUse time.Time
	alerted map[string]bool // "amount/level" alerts settled in this window
	gone    bool            // forgotten: no longer in Recorder.budgets
}

// Lease sizes: a claim takes a sixteenth of what is left, at most
// maxLease, so servers share the end of a budget fairly and a budget
// near its end is claimed one invocation at a time.
const (
	leaseDivisor = 16
	maxLease     = 64
	// leaseIdle is how long a lease sits unused before the flusher hands
	// it back for other servers.
	leaseIdle = 2 * time.Second
)

// Admit decides whether an invocation may start: every hard budget that
// applies (the app's, the function's, the calling API key's) must have
// something left. It takes one invocation from each invocations budget's
// lease, claiming a new lease from the shared counter when this server's
// is used up. A refusal is an *ExhaustedError and is counted as rejected.
// A function without budgets, called without a budgeted key, costs a few
// pointer checks here.
func (r *Recorder) Admit(ctx context.Context, inv Invocation) (Ticket, error) {
	var t Ticket
	if r == nil {
		return t, nil
	}
	keyed := r.cfg.KeyBudget != nil && len(inv.Origin) > len(keyPrefix) && inv.Origin[:len(keyPrefix)] == keyPrefix
	if inv.AppBudget == nil && inv.FunctionBudget == nil && !keyed {
		return t, nil
	}
	now := time.Now()
	keyName, keyBudget, err := r.keyBudget(ctx, inv.Origin, now)
	if err != nil {
		return t, fmt.Errorf("check budget: %w: %w", aegis.ErrUnavailable, err)
	}
	type applied struct {
		id budgetID
		b  *manifest.Budget
	}
	for _, a := range [3]applied{
		{budgetID{scope: ScopeApp, app: inv.App}, inv.AppBudget},
		{budgetID{scope: ScopeFunction, app: inv.App, function: inv.Function}, inv.FunctionBudget},
		{budgetID{scope: ScopeKey, key: keyName}, keyBudget},
	} {
		if a.b == nil {
			continue
		}
		st := r.state(a.id)
		refused, err := r.take(ctx, st, a.b, now)
		for errors.Is(err, errGone) {
			st = r.state(a.id)
			refused, err = r.take(ctx, st, a.b, now)
		}
		if err == nil && refused == nil {
			t.states[t.n] = st
			t.n++
			continue
		}
		r.giveBack(t, now)
		if err != nil {
			return Ticket{}, fmt.Errorf("check budget: %w: %w", aegis.ErrUnavailable, err)
		}
		refused.App, refused.Function = inv.App, inv.Function
		r.Reject(inv.App, inv.Function, inv.Origin)
		return Ticket{}, refused
	}
	return t, nil
}

// giveBack returns the invocations taken from the leases of t's budgets
// when a later budget refuses.
func (r *Recorder) giveBack(t Ticket, now time.Time) {
	for _, st := range t.states[:t.n] {
		st.mu.Lock()
		if st.b.Mode != manifest.BudgetAlert && st.b.Invocations > 0 && now.Before(st.end) {
			st.lease++
		}
		st.mu.Unlock()
	}
}

func (r *Recorder) state(id budgetID) *budgetState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.budgets[id]
	if !ok {
		st = &budgetState{id: id}
		r.budgets[id] = st
	}
	return st
}

// take checks one budget for an invocation about to start and, for a
// hard invocations budget, takes one from the lease.
func (r *Recorder) take(ctx context.Context, st *budgetState, b *manifest.Budget, now time.Time) (*ExhaustedError, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return nil, errGone
	}
	if st.b.Per != b.Per && st.per != "" {
		// A deploy changed the window: the old window's state is no use.
		st.end = time.Time{}
	}
	st.b = *b
	r.roll(st, now)
	st.lastUse = now
	if b.Mode == manifest.BudgetAlert {
		return nil, nil
	}
	if !st.loaded {
		if err := r.read(ctx, st); err != nil {
			return nil, err
		}
	}
	refuse := func(amount string) *ExhaustedError {
		return &ExhaustedError{Scope: st.id.scope, Key: st.id.key, Amount: amount, Window: b.Per, ResetsAt: st.end}
	}
	if b.GBSeconds > 0 && st.shared.GBSeconds+st.pending.GBSeconds >= b.GBSeconds {
		return refuse("gb_seconds"), nil
	}
	if b.Egress > 0 && st.shared.EgressBytes+st.pending.EgressBytes >= int64(b.Egress) {
		return refuse("egress"), nil
	}
	if b.Invocations <= 0 {
		return nil, nil
	}
	if st.lease > 0 && st.leaseOf > b.Invocations {
		// The budget was lowered: what this server holds may be beyond it.
		if err := r.release(ctx, st); err != nil {
			return nil, err
		}
	}
	if st.lease == 0 {
		ok, err := r.claim(ctx, st, b.Invocations)
		if err != nil {
			return nil, err
		}
		if !ok {
			return refuse("invocations"), nil
		}
	}
	st.lease--
	return nil, nil
}

// roll moves st to the window containing now, leaving what was pending
// for the old window to be flushed to the old counter. Callers hold st.mu.
func (r *Recorder) roll(st *budgetState, now time.Time) {
	if now.Before(st.end) && st.per == st.b.Per {
		return
	}
	if !st.pending.isZero() && st.key != "" {
		r.orphanMu.Lock()
		o := r.orphans[st.key]
		o.add(st.pending)
		r.orphans[st.key] = o
		r.orphanMu.Unlock()
	}
	// A lease of an ended window is worth nothing: its counter is not
	// read again.
	st.per = st.b.Per
	st.end = st.per.End(now)
	st.key = budgetStoreKey(st.id, st.per, st.per.Start(now))
	st.loaded, st.shared, st.pending, st.lease, st.leaseOf, st.alerted = false, amounts{}, amounts{}, 0, 0, nil
}

// read loads the shared counter. Callers hold st.mu.
func (r *Recorder) read(ctx context.Context, st *budgetState) error {
	cur, err := update(ctx, r.cfg.Store, st.key, func(*amounts) bool { return false })
	if err != nil {
		return err
	}
	st.shared, st.loaded = cur, true
	return nil
}

// claim reserves a lease of invocations from the shared counter, never
// taking it beyond limit; false when nothing is left. Callers hold st.mu.
func (r *Recorder) claim(ctx context.Context, st *budgetState, limit int64) (bool, error) {
	var got int64
	cur, err := update(ctx, r.cfg.Store, st.key, func(a *amounts) bool {
		left := limit - a.Claimed
		if left <= 0 {
			got = 0
			return false
		}
		got = min(max(left/leaseDivisor, 1), maxLease)
		a.Claimed += got
		return true
	})
	if err != nil {
		return false, err
	}
	st.shared, st.loaded = cur, true
	st.lease += got
	st.leaseOf = limit
	return got > 0, nil
}

// release hands st's lease back to the shared counter. Callers hold st.mu.
func (r *Recorder) release(ctx context.Context, st *budgetState) error {
	n := st.lease
	cur, err := update(ctx, r.cfg.Store, st.key, func(a *amounts) bool {
		a.Claimed = max(a.Claimed-n, 0)
		return true
	})
	if err != nil {
		return err
	}
	st.shared, st.lease = cur, 0
	return nil
}

// flushBudget adds st's pending deltas to its counter, refreshes what this
// server knows of the others' spending, hands back an idle lease and
// raises the alerts an alert budget has reached.
func (r *Recorder) flushBudget(ctx context.Context, st *budgetState, now time.Time, closing bool) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.key == "" {
		return nil
	}
	current := now.Before(st.end)
	if st.lease > 0 && (closing || !current || now.Sub(st.lastUse) > leaseIdle) {
		if current {
			if err := r.release(ctx, st); err != nil {
				return err
			}
		}
		st.lease = 0
	}
	recent := now.Sub(st.lastUse) < time.Minute
	if st.pending.isZero() && !recent {
		return nil
	}
	d := st.pending
	cur, err := update(ctx, r.cfg.Store, st.key, addTo(d))
	if err != nil {
		return err
	}
	st.pending = amounts{}
	st.shared, st.loaded = cur, true
	if st.b.Mode == manifest.BudgetAlert && current {
		r.alerts(ctx, st)
	}
	return nil
}

// alertLevels are the percentages of an amount an alert budget reports.
var alertLevels = [...]int{80, 100}

// alerts raises each alert st's counter has reached and that no server
// raised in this window: the first server to create the alert's record
// logs it. Callers hold st.mu.
func (r *Recorder) alerts(ctx context.Context, st *budgetState) {
	for _, a := range [...]struct {
		name      string
		used, max float64
	}{
		{"invocations", float64(st.shared.Invocations), float64(st.b.Invocations)},
		{"gb_seconds", st.shared.GBSeconds, st.b.GBSeconds},
		{"egress", float64(st.shared.EgressBytes), float64(st.b.Egress)},
	} {
		if a.max <= 0 {
			continue
		}
		pct := a.used / a.max * 100
		for _, level := range alertLevels {
			name := a.name + "/" + strconv.Itoa(level)
			if pct < float64(level) || st.alerted[name] {
				continue
			}
			_, err := r.cfg.Store.Create(ctx, alertStoreKey(st.key, a.name, level), []byte(time.Now().UTC().Format(time.RFC3339)))
			switch {
			case err == nil:
				r.alert(st, a.name, level, pct)
			case !isConflict(err):
				r.log.Warn("budget alert record unavailable; will retry", logkey.Error, err)
				continue
			}
			if st.alerted == nil {
				st.alerted = map[string]bool{}
			}
			st.alerted[name] = true
		}
	}
}

func (r *Recorder) alert(st *budgetState, amount string, level int, pct float64) {
	attrs := []slog.Attr{
		slog.Bool(logkey.Security, true), slog.String(logkey.Budget, st.id.scope),
		slog.String(logkey.Amount, amount), slog.Int(logkey.Percent, int(pct)),
		slog.String(logkey.Window, string(st.per)), slog.String(logkey.ResetsAt, st.end.Format(time.RFC3339)),
		slog.String(logkey.Reason, "budget "+strconv.Itoa(level)+"% used"),
	}
	if st.id.app != "" {
		attrs = append(attrs, slog.String(logkey.App, st.id.app))
	}
	if st.id.function != "" {
		attrs = append(attrs, slog.String(logkey.Function, st.id.function))
	}
	if st.id.key != "" {
		attrs = append(attrs, slog.String(logkey.KeyName, st.id.key))
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "budget alert", attrs...)
	r.cfg.Metrics.BudgetAlert(st.id.app, st.id.function, st.id.scope, strconv.Itoa(level))
}
