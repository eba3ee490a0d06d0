// Package usage owns what invocations cost and what they may spend: it
// records each invocation's usage (invocations, GB-seconds, egress bytes)
// charged to (app, function, origin), counts the invocations refused, and
// enforces the budgets of apps, functions and API keys (docs/budgets.md).
//
// Everything it counts lives in JetStream (a key-value bucket every server
// on one NATS shares): each server keeps deltas in memory, adds them to the
// shared records every FlushEvery with compare-and-set on the record's
// revision, so servers add to each other's counts rather than overwrite
// them, and a restart loses at most what was not yet flushed. A hard
// invocation budget is spent in leases claimed from the shared counter,
// never beyond the budget, so no server can start more invocations than the
// budget allows, whatever the others do.
//
// It never refuses work on its own: the dispatcher asks Admit before an
// invocation and reports it with Done after.
package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Store is the key-value bucket usage lives in, shared by every server on
// one NATS. Update and Create fail with aegis.ErrConflict when the
// revision moved (or the key exists), Get with aegis.ErrNotFound.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Bucket is the name of the bucket the server opens for usage, and
// Retention how long a record is kept after its last write (so `aegis
// usage --since` reaches that far back).
const (
	Bucket    = "aegis_usage"
	Retention = 90 * 24 * time.Hour
)

// Config wires a Recorder.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Metrics receives the usage counters and budget alerts; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// KeyBudget returns the budget of the API key named, or a zero Quota
	// when it has none (aegis.ErrNotFound is read as none too). Nil: API
	// keys have no budgets.
	KeyBudget func(ctx context.Context, keyName string) (manifest.Quota, error)
	// FlushEvery is how often deltas are added to the shared records
	// (default 500ms).
	FlushEvery time.Duration
}

// Origins that are not a credential.
const (
	OriginPublic = "public"
	keyPrefix    = "key:"
)

// amounts is one record in the bucket: a usage row (an hour of one app,
// function and origin) or a budget's counter (one window). Claimed is the
// invocations budget's leases: how many invocations servers have reserved.
type amounts struct {
	Invocations int64   `json:"invocations,omitempty"`
	GBSeconds   float64 `json:"gb_seconds,omitempty"`
	EgressBytes int64   `json:"egress_bytes,omitempty"`
	Rejected    int64   `json:"rejected,omitempty"`
	Claimed     int64   `json:"claimed,omitempty"`
}

func (a *amounts) add(b amounts) {
	a.Invocations += b.Invocations
	a.GBSeconds += b.GBSeconds
	a.EgressBytes += b.EgressBytes
	a.Rejected += b.Rejected
	a.Claimed += b.Claimed
}

func (a amounts) isZero() bool { return a == amounts{} }

// rowKey names a usage row in memory: the hour (Unix hours) and the
// charged triple.
type rowKey struct {
	hour                  int64
	app, function, origin string
}

// Recorder records usage and enforces budgets. It is safe for concurrent
// use; Close flushes what is left.
type Recorder struct {
	cfg Config
	log *slog.Logger

	// Lock order: a budgetState's mu before orphanMu; mu is never taken
	// while a budgetState's is held, and only tried the other way round
	// (forget), since a state's lock is held across a claim's round trip.
	mu      sync.Mutex
	rows    map[rowKey]*amounts
	budgets map[budgetID]*budgetState
	keys    map[string]keyEntry

	orphanMu sync.Mutex
	orphans  map[string]amounts // deltas of windows that ended before they were flushed

	flushMu   sync.Mutex     // one flush at a time
	loop      *periodic.Loop // the flusher
	closeOnce sync.Once
}

// New starts a Recorder; its flusher runs until Close.
func New(cfg Config) *Recorder {
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, rows: map[rowKey]*amounts{}, budgets: map[budgetID]*budgetState{},
		orphans: map[string]amounts{}, keys: map[string]keyEntry{}}
	r.loop = periodic.Start(r.cfg.FlushEvery, 10*time.Second, r.flushLoop)
	return r
}

// flushLoop is one run of the flusher.
func (r *Recorder) flushLoop(ctx context.Context) {
	if err := r.flush(ctx, false); err != nil {
		r.log.Warn("usage flush failed; will retry", logkey.Error, err)
	}
}

// Close stops the flusher, hands back the invocation leases this server
// holds and flushes every delta. It is safe to call twice.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	var err error
	r.closeOnce.Do(func() {
		r.loop.Stop()
		err = r.flush(ctx, true)
	})
	return err
}

// Flush adds this server's deltas to the shared records now, so a reader
// right after sees them.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	return r.flush(ctx, false)
}

// Origin is what an invocation is charged to: its Request.Origin, or
// "public" when it has none.
func Origin(o string) string {
	if o == "" {
		return OriginPublic
	}
	return o
}

// Used is what one invocation used.
type Used struct {
	// Memory is the function's memory limit in bytes.
	Memory int64
	// Wall is how long the invocation ran.
	Wall time.Duration
	// Egress is the bytes moved by fetch (sandbox.Meter.EgressBytes).
	Egress int64
}

// GBSeconds is the memory limit in GiB (2^30 bytes) times the wall time in
// seconds.
func (u Used) GBSeconds() float64 {
	return float64(u.Memory) / (1 << 30) * u.Wall.Seconds()
}

// Done records one finished invocation (failed ones too: they ran) on its
// usage row and on the budgets Admit found for it.
func (r *Recorder) Done(t Ticket, inv Invocation, u Used) {
	if r == nil {
		return
	}
	now := time.Now()
	d := amounts{Invocations: 1, GBSeconds: u.GBSeconds(), EgressBytes: u.Egress}
	r.addRow(now, inv.App, inv.Function, Origin(inv.Origin), d)
	for _, st := range t.states[:t.n] {
		st.mu.Lock()
		r.roll(st, now)
		st.pending.add(d)
		st.lastUse = now
		st.mu.Unlock()
	}
}

// Reject counts an invocation refused before it ran, for a budget here or
// a rate limit elsewhere.
func (r *Recorder) Reject(app, function, origin string) {
	if r == nil {
		return
	}
	r.addRow(time.Now(), app, function, Origin(origin), amounts{Rejected: 1})
}

func (r *Recorder) addRow(now time.Time, app, function, origin string, d amounts) {
	k := rowKey{hour: now.Unix() / 3600, app: app, function: function, origin: origin}
	r.mu.Lock()
	if a, ok := r.rows[k]; ok {
		a.add(d)
	} else {
		r.rows[k] = &d
	}
	r.mu.Unlock()
}

// casTries bounds one read-modify-write loop: every lost race means
// another server wrote, so the loop makes progress.
const casTries = 50

// update applies change to the record at key with compare-and-set, and
// returns the record as written. change returning false writes nothing
// (the record as read is returned).
func update(ctx context.Context, s Store, key string, change func(*amounts) bool) (amounts, error) {
	for range casTries {
		var cur amounts
		v, rev, err := s.Get(ctx, key)
		switch {
		case errors.Is(err, aegis.ErrNotFound):
			rev = 0
		case err != nil:
			return amounts{}, fmt.Errorf("read %s: %w", key, err)
		default:
			if err := json.Unmarshal(v, &cur); err != nil {
				return amounts{}, fmt.Errorf("read %s: %w", key, err)
			}
		}
		if !change(&cur) {
			return cur, nil
		}
		b, err := json.Marshal(cur)
		if err != nil {
			return amounts{}, fmt.Errorf("write %s: %w", key, err)
		}
		if rev == 0 {
			_, err = s.Create(ctx, key, b)
		} else {
			_, err = s.Update(ctx, key, b, rev)
		}
		if err == nil {
			return cur, nil
		}
		if !errors.Is(err, aegis.ErrConflict) {
			return amounts{}, fmt.Errorf("write %s: %w", key, err)
		}
		if err := ctx.Err(); err != nil {
			return amounts{}, fmt.Errorf("write %s: %w", key, err)
		}
	}
	return amounts{}, fmt.Errorf("write %s: %d writers raced: %w", key, casTries, aegis.ErrUnavailable)
}

func addTo(d amounts) func(*amounts) bool {
	return func(a *amounts) bool {
		if d.isZero() {
			return false
		}
		a.add(d)
		return true
	}
}

// flush adds every pending delta to its record. A delta whose write fails
// is kept for the next flush. closing also hands back every lease.
func (r *Recorder) flush(ctx context.Context, closing bool) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.orphanMu.Lock()
	orphans := r.orphans
	r.orphans = map[string]amounts{}
	r.orphanMu.Unlock()
	r.mu.Lock()
	rows := r.rows
	r.rows = map[rowKey]*amounts{}
	states := make([]*budgetState, 0, len(r.budgets))
	for _, st := range r.budgets {
		states = append(states, st)
	}
	r.mu.Unlock()

	var errs []error
	for k, d := range rows {
		if _, err := update(ctx, r.cfg.Store, rowStoreKey(k), addTo(*d)); err != nil {
			errs = append(errs, err)
			r.mu.Lock()
			if a, ok := r.rows[k]; ok {
				a.add(*d)
			} else {
				r.rows[k] = d
			}
			r.mu.Unlock()
			continue
		}
		r.cfg.Metrics.Usage(k.app, k.function, k.origin, d.Invocations, d.GBSeconds, d.EgressBytes, d.Rejected)
	}
	for key, d := range orphans {
		if _, err := update(ctx, r.cfg.Store, key, addTo(d)); err != nil {
			errs = append(errs, err)
			r.orphanMu.Lock()
			o := r.orphans[key]
			o.add(d)
			r.orphans[key] = o
			r.orphanMu.Unlock()
		}
	}
	now := time.Now()
	for _, st := range states {
		if err := r.flushBudget(ctx, st, now, closing); err != nil {
			errs = append(errs, err)
		}
	}
	r.forget(now)
	return errors.Join(errs...)
}

// forget drops the budgets nobody used for a while and whose state is all
// in the store, so a server's memory follows its active budgets.
func (r *Recorder) forget(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, st := range r.budgets {
		if !st.mu.TryLock() {
			continue // busy, so not idle
		}
		if now.Sub(st.lastUse) > forgetAfter && st.pending.isZero() && st.lease == 0 {
			st.gone = true // an Admit that already holds st takes a new one
			delete(r.budgets, id)
		}
		st.mu.Unlock()
	}
	for name, e := range r.keys {
		if now.After(e.expires) {
			delete(r.keys, name)
		}
	}
}

// forgetAfter is longer than any invocation may run (limits.timeout is at
// most 5m), so a state is never dropped between an Admit and its Done.
const forgetAfter = 10 * time.Minute

// keyEntry caches an API key's budget for keyCacheTTL, so an invocation
// does not read the key store.
type keyEntry struct {
	budget  *manifest.Budget // nil: no budget
	expires time.Time
}

const keyCacheTTL = 5 * time.Second

// keyBudget is the budget of the API key behind origin, or nil.
func (r *Recorder) keyBudget(ctx context.Context, origin string, now time.Time) (string, *manifest.Budget, error) {
	name, ok := strings.CutPrefix(origin, keyPrefix)
	if !ok || r.cfg.KeyBudget == nil {
		return "", nil, nil
	}
	r.mu.Lock()
	e, ok := r.keys[name]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return name, e.budget, nil
	}
	q, err := r.cfg.KeyBudget(ctx, name)
	if err != nil && !errors.Is(err, aegis.ErrNotFound) {
		return "", nil, fmt.Errorf("read budget of key %s: %w", name, err)
	}
	e = keyEntry{expires: now.Add(keyCacheTTL)}
	if err == nil && !q.IsZero() && q.Per.Valid() {
		e.budget = &manifest.Budget{Per: q.Per, Invocations: q.Count, Mode: manifest.BudgetHard}
	}
	r.mu.Lock()
	r.keys[name] = e
	r.mu.Unlock()
	return name, e.budget, nil
}
