package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// incidentID names the incident of a rule on a target: the same on every
// server, so the first server to open it is the one that raises the alert.
func incidentID(rule, target string) string {
	sum := sha256.Sum256([]byte(rule + "\x00" + target))
	return incidentPrefix + hex.EncodeToString(sum[:10])
}

// fire does what rule r says for target: its blocks (at once on this
// server, then in the store for the others), one log line, and an alert
// unless an incident of the rule on the target is open on any server. It
// runs on the counting goroutine.
func (g *Guard) fire(r Rule, target string, f firing, now time.Time) {
	var blocks []Block
	var actions []string
	incident := time.Duration(0)
	for _, a := range r.Then {
		incident = max(incident, a.Duration)
		actions = append(actions, string(a.Kind)+" "+a.Duration.String())
		kind := kindOf(a.Kind)
		if kind == "" {
			continue
		}
		b := Block{ID: blockID(kind, target), Kind: kind, Target: target, Rule: r.Name, Count: int(math.Round(f.count)),
			Window: r.Window, Created: now.UTC(), Expires: now.Add(a.Duration).UTC()}
		if kind == KindThrottle {
			b.Rate = throttleRate(r, f)
		}
		blocks = append(blocks, b)
	}
	ids := make([]string, len(blocks))
	g.mu.Lock()
	for i, b := range blocks {
		g.pending[b.ID] = b
		ids[i] = b.ID
	}
	g.publish()
	g.mu.Unlock()

	alert := Alert{ID: incidentID(r.Name, target), Time: now.UTC(), Rule: r.Name, GroupBy: string(r.GroupBy),
		Target: target, Count: f.count, Window: r.Window.String(), Baseline: f.baseline, Actions: actions,
		Blocks: ids, Until: now.Add(incident).UTC()}
	for _, s := range r.Signals {
		alert.Signals = append(alert.Signals, s.String())
	}
	alert.Message = message(r, target, f)
	g.log.Warn(headline(r), logkey.Security, true, logkey.Alert, true, logkey.Rule, r.Name,
		logkey.Reason, r.Name, logkey.Remote, addressOnly(r, target), logkey.Target, target, logkey.Count, f.count,
		logkey.Window, r.Window.String(), logkey.Actions, strings.Join(actions, ", "), logkey.ExpiresIn, incident.String(),
		logkey.BlockID, strings.Join(ids, ","), logkey.AlertID, alert.ID)
	for range blocks {
		if g.cfg.OnBlock != nil {
			g.cfg.OnBlock(r.Name)
		}
	}

	var ctx context.Context = context.Background()
	var cancel context.CancelFunc = func() {}
	if g.cfg.Store != nil {
		ctx, cancel = context.WithTimeout(ctx, storeTimeout)
	}
	defer cancel()
	for _, b := range blocks {
		if g.cfg.Store == nil {
			break
		}
		if err := g.write(ctx, b); err != nil {
			g.log.Warn("guard block kept on this server only until the store takes it", logkey.BlockID, b.ID, logkey.Error, err)
		}
	}
	if g.openIncident(ctx, alert, incident) {
		select {
		case g.alerts <- alert:
		default:
			g.log.Warn("guard alert dropped: alerts are not being delivered fast enough", logkey.AlertID, alert.ID, logkey.Rule, r.Name)
		}
	}
}

// throttleRate is what a throttle allows: the level above which the rule
// fired, as invocations per second (for a rule measuring GB-seconds, at
// the window's GB-seconds per invocation), never below one per window.
func throttleRate(r Rule, f firing) float64 {
	allowed := f.limit
	if r.GBSeconds && f.count > 0 {
		allowed = f.limit / (f.count / f.invocations)
	}
	return max(allowed, 1) / r.Window.Seconds()
}

// openIncident records an incident of a's rule on a's target for d, on
// this server and in the store, and reports whether it is new everywhere:
// only then is an alert raised. A store that cannot be written leaves the
// decision to this server: an alert twice is better than none.
func (g *Guard) openIncident(ctx context.Context, a Alert, d time.Duration) bool {
	now := g.cfg.Now()
	g.mu.Lock()
	if until, ok := g.incidents[a.ID]; ok && now.Before(until) {
		g.mu.Unlock()
		return false
	}
	g.incidents[a.ID] = a.Until
	for id, until := range g.incidents {
		if !now.Before(until) {
			delete(g.incidents, id)
		}
	}
	g.mu.Unlock()
	if g.cfg.Store == nil {
		return true
	}
	v, err := json.Marshal(a)
	if err != nil {
		return true
	}
	_, err = g.cfg.Store.CreateTTL(ctx, a.ID, v, d)
	if errors.Is(err, aegis.ErrConflict) {
		return false // another server opened it and raised the alert
	}
	if err != nil {
		g.log.Warn("guard incident not shared: other servers may alert on it too", logkey.AlertID, a.ID, logkey.Error, err)
	}
	return true
}

// endIncident forgets the incident of rule on target, here and in the
// store, so the rule firing again raises a new alert.
func (g *Guard) endIncident(ctx context.Context, rule, target string) {
	id := incidentID(rule, target)
	g.mu.Lock()
	delete(g.incidents, id)
	g.mu.Unlock()
	if g.cfg.Store != nil {
		if err := g.cfg.Store.Delete(ctx, id); err != nil && !errors.Is(err, aegis.ErrNotFound) {
			g.log.Warn("guard incident not ended in the store", logkey.AlertID, id, logkey.Error, err)
		}
	}
}

// enforced reports whether r's target is already under every block r
// places, or, for a rule that only alerts, under an open incident: then
// there is nothing to count until it ends.
func (g *Guard) enforced(r Rule, target string) bool {
	set := g.blocks.Load()
	placed := false
	for _, a := range r.Then {
		kind := kindOf(a.Kind)
		if kind == "" {
			continue
		}
		placed = true
		b, ok := set.get(kind, target)
		if !ok || !g.cfg.Now().Before(b.Expires) {
			return false
		}
	}
	if placed {
		return true
	}
	g.mu.Lock()
	until, ok := g.incidents[incidentID(r.Name, target)]
	g.mu.Unlock()
	return ok && g.cfg.Now().Before(until)
}

// deliverAlerts hands alerts to OnAlert until Close.
func (g *Guard) deliverAlerts() {
	for {
		select {
		case <-g.stop:
			return
		case a := <-g.alerts:
			if g.cfg.OnAlert != nil {
				g.cfg.OnAlert(a)
			}
		}
	}
}

// headline is the log message of a rule firing, by its strongest action.
func headline(r Rule) string {
	msg := "guard alert"
	for _, a := range r.Then {
		switch a.Kind {
		case ActBlockAddress:
			return "guard blocked address"
		case ActSuspendKey:
			return "guard suspended key"
		case ActQuarantine:
			return "guard quarantined function"
		case ActDisableRoute:
			return "guard disabled route"
		case ActThrottle:
			msg = "guard throttled function"
		}
	}
	return msg
}

// addressOnly is the target when it is an address (the log line's
// remote), else "".
func addressOnly(r Rule, target string) string {
	if r.GroupBy == ByAddress {
		return target
	}
	return ""
}

// message says in one sentence what happened and what was done.
func message(r Rule, target string, f firing) string {
	what := "signals"
	if len(r.Signals) == 1 {
		what = r.Signals[0].String()
	}
	if r.GBSeconds {
		what = "GB-seconds of invocation"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s %g %s within %s", r.Name, r.GroupBy, target, round(f.count), what, r.Window)
	switch {
	case r.Baseline > 0 && f.baseline > 0:
		fmt.Fprintf(&b, " (%gx its average of %g)", round(f.count/f.baseline), round(f.baseline))
	case r.Baseline > 0:
		b.WriteString(" (its average is 0)")
	}
	for i, a := range r.Then {
		if i == 0 {
			b.WriteString("; ")
		} else {
			b.WriteString(", ")
		}
		if a.Kind == ActAlert {
			b.WriteString("alert")
			continue
		}
		fmt.Fprintf(&b, "%s for %s", a.Kind, a.Duration)
	}
	return b.String()
}

func round(v float64) float64 { return math.Round(v*100) / 100 }
