package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// Row is one hour of usage of one app, function and caller (the origin
// charged).
type Row struct {
	Hour                  time.Time
	App, Function, Caller string
	Invocations           int64
	GBSeconds             float64
	EgressBytes           int64
	Rejected              int64
}

// Rows returns the usage rows of every hour from the one containing since,
// of app ("" for every app), sorted by hour, app, function and caller. It
// flushes this server's deltas first, so what it has just run is counted;
// other servers' reach the store within their FlushEvery.
func (r *Recorder) Rows(ctx context.Context, since time.Time, app string) ([]Row, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	from := since.UTC().Truncate(time.Hour)
	keys, err := r.cfg.Store.Keys(ctx, rowPrefix)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	var rows []Row
	for _, key := range keys {
		hour, a, fn, origin, err := parseRowKey(key)
		if err != nil || hour.Before(from) || (app != "" && a != app) {
			continue // a key this package did not write is not usage
		}
		v, _, err := r.cfg.Store.Get(ctx, key)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // expired between the listing and now
		}
		if err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		var am amounts
		if err := json.Unmarshal(v, &am); err != nil {
			return nil, fmt.Errorf("read usage %s: %w", key, err)
		}
		rows = append(rows, Row{Hour: hour, App: a, Function: fn, Caller: origin,
			Invocations: am.Invocations, GBSeconds: am.GBSeconds, EgressBytes: am.EgressBytes, Rejected: am.Rejected})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if !a.Hour.Equal(b.Hour) {
			return a.Hour.Before(b.Hour)
		}
		return strings.Join([]string{a.App, a.Function, a.Caller}, "\x00") < strings.Join([]string{b.App, b.Function, b.Caller}, "\x00")
	})
	return rows, nil
}

// Spec names a budget for Budgets: its scope and owner and what it allows.
type Spec struct {
	Scope         string
	App, Function string
	Key           string
	Budget        manifest.Budget
}

// State is a budget in its current window.
type State struct {
	Spec
	ResetsAt time.Time
	// Invocations counts those that ran; Claimed those reserved by
	// servers' leases (≥ Invocations while leases are held).
	Invocations, Claimed int64
	GBSeconds            float64
	EgressBytes          int64
	// Exhausted: a hard budget refuses new invocations now.
	Exhausted bool
}

// Budgets reads the current window of each budget from the store.
func (r *Recorder) Budgets(ctx context.Context, specs []Spec, now time.Time) ([]State, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("read budgets: %w", err)
	}
	out := make([]State, 0, len(specs))
	for _, s := range specs {
		per := s.Budget.Per
		key := budgetStoreKey(budgetID{scope: s.Scope, app: s.App, function: s.Function, key: s.Key}, per, per.Start(now))
		cur, err := update(ctx, r.cfg.Store, key, func(*amounts) bool { return false })
		if err != nil {
			return nil, fmt.Errorf("read budgets: %w", err)
		}
		st := State{Spec: s, ResetsAt: per.End(now), Invocations: cur.Invocations, Claimed: cur.Claimed,
			GBSeconds: cur.GBSeconds, EgressBytes: cur.EgressBytes}
		if s.Budget.Mode != manifest.BudgetAlert {
			b := s.Budget
			st.Exhausted = (b.Invocations > 0 && cur.Claimed >= b.Invocations) ||
				(b.GBSeconds > 0 && cur.GBSeconds >= b.GBSeconds) || (b.Egress > 0 && cur.EgressBytes >= int64(b.Egress))
		}
		out = append(out, st)
	}
	return out, nil
}

// KeyBudgets reads the budgets of the API keys charged in their current
// window; nothing when KeyBudget is not configured.
func (r *Recorder) KeyBudgets(ctx context.Context, now time.Time) ([]State, error) {
	if r.cfg.KeyBudget == nil {
		return nil, nil
	}
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("read key budgets: %w", err)
	}
	keys, err := r.cfg.Store.Keys(ctx, budgetPrefix+ScopeKey+".")
	if err != nil {
		return nil, fmt.Errorf("read key budgets: %w", err)
	}
	var specs []Spec
	for _, k := range keys {
		parts := strings.Split(k, ".")
		if len(parts) != 4 {
			continue
		}
		name, err := unescape(parts[3])
		if err != nil {
			continue
		}
		q, err := r.cfg.KeyBudget(ctx, name)
		if err != nil || q.IsZero() || !q.Per.Valid() || windowID(q.Per, q.Per.Start(now)) != parts[2] {
			continue // no budget now, or a window that has ended
		}
		specs = append(specs, Spec{Scope: ScopeKey, Key: name,
			Budget: manifest.Budget{Per: q.Per, Invocations: q.Count, Mode: manifest.BudgetHard}})
	}
	return r.Budgets(ctx, specs, now)
}
