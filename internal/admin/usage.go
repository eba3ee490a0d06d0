package admin

import (
	"net/http"
	"sort"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/usage"
)

// maxUsageSince is how far back GET /v1/usage reaches: as long as the
// store keeps rows.
const maxUsageSince = usage.Retention

// usageRows answers GET /v1/usage?app=&by=&since=: the usage of the
// caller's apps over the period, one row per app, function and caller,
// or with functions (by=caller) or callers (by=function) added up.
func (a *API) usageRows(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	app, err := a.listedApp(r, q.Get("app"))
	if err != nil {
		return err
	}
	by := q.Get("by")
	if by != "" && by != adminapi.UsageByFunction && by != adminapi.UsageByCaller {
		return &userError{http.StatusBadRequest, "by must be function or caller"}
	}
	since := 24 * time.Hour
	if s := q.Get("since"); s != "" {
		if since, err = time.ParseDuration(s); err != nil || since <= 0 || since > maxUsageSince {
			return &userError{http.StatusBadRequest, "since must be a duration such as 24h, at most " + maxUsageSince.String()}
		}
	}
	if a.cfg.Usage == nil {
		writeJSON(w, http.StatusOK, []adminapi.UsageRow{})
		return nil
	}
	rows, err := a.cfg.Usage.Rows(r.Context(), time.Now().Add(-since), app)
	if err != nil {
		return err
	}
	type group struct{ app, function, caller string }
	sums := map[group]*adminapi.UsageRow{}
	for _, row := range rows {
		if !canSee(r, row.App) {
			continue
		}
		g := group{row.App, row.Function, row.Caller}
		switch by {
		case adminapi.UsageByFunction:
			g.caller = ""
		case adminapi.UsageByCaller:
			g.function = ""
		}
		s, ok := sums[g]
		if !ok {
			s = &adminapi.UsageRow{App: g.app, Function: g.function, Caller: g.caller}
			sums[g] = s
		}
		s.Invocations += row.Invocations
		s.GBSeconds += row.GBSeconds
		s.EgressBytes += row.EgressBytes
		s.Rejected += row.Rejected
	}
	out := make([]adminapi.UsageRow, 0, len(sums))
	for _, s := range sums {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.App != y.App {
			return x.App < y.App
		}
		if x.Function != y.Function {
			return x.Function < y.Function
		}
		return x.Caller < y.Caller
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

// budgets answers GET /v1/usage/budgets?app=: every budget of the caller's
// apps in its current window, and, for a token that sees every app, the
// API keys' budgets charged in theirs.
func (a *API) budgets(w http.ResponseWriter, r *http.Request, _ string) error {
	app, err := a.listedApp(r, r.URL.Query().Get("app"))
	if err != nil {
		return err
	}
	out := []adminapi.BudgetState{}
	if a.cfg.Usage == nil {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	snap := a.cfg.Registry.Snapshot()
	var specs []usage.Spec
	for _, name := range snap.AppNames() {
		if (app != "" && name != app) || !canSee(r, name) {
			continue
		}
		m := snap.Apps[name].Manifest
		if m.Budget != nil {
			specs = append(specs, usage.Spec{Scope: usage.ScopeApp, App: name, Budget: *m.Budget})
		}
		for _, fn := range m.FunctionNames() {
			if b := m.Functions[fn].Budget; b != nil {
				specs = append(specs, usage.Spec{Scope: usage.ScopeFunction, App: name, Function: fn, Budget: *b})
			}
		}
	}
	now := time.Now()
	states, err := a.cfg.Usage.Budgets(r.Context(), specs, now)
	if err != nil {
		return err
	}
	if p := principal(r); app == "" && p != nil && len(p.Apps) == 0 {
		keys, err := a.cfg.Usage.KeyBudgets(r.Context(), now)
		if err != nil {
			return err
		}
		states = append(states, keys...)
	}
	for _, s := range states {
		mode := s.Budget.Mode
		if mode == "" {
			mode = "hard"
		}
		out = append(out, adminapi.BudgetState{
			Scope: s.Scope, App: s.App, Function: s.Function, Key: s.Key, Per: string(s.Budget.Per), Mode: mode,
			ResetsAt: s.ResetsAt, Invocations: s.Invocations, InvocationsLimit: s.Budget.Invocations,
			GBSeconds: s.GBSeconds, GBSecondsLimit: s.Budget.GBSeconds, EgressBytes: s.EgressBytes, EgressLimit: int64(s.Budget.Egress),
			Exhausted: s.Exhausted,
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
