package callgraph

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Declared returns the edges m declares: each function's triggers (into
// it) and grants (out of it). Grant patterns are the edges' ends as
// written ("images/*", "*.example.com"), egress hosts in their canonical
// form, since an allowed call is recorded on the grant that allowed it.
func Declared(m *manifest.Manifest) []Edge {
	if m == nil {
		return nil
	}
	var out []Edge
	seen := map[Edge]bool{}
	add := func(e Edge) {
		if e.From != "" && e.To != "" && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, name := range m.FunctionNames() {
		f := m.Functions[name]
		if f == nil {
			continue
		}
		for _, t := range f.Triggers {
			switch {
			case t.HTTP != nil:
				add(Edge{HTTP, RouteName(t.HTTP.Method, t.HTTP.Path), name})
			case t.Event != nil:
				add(Edge{Event, t.Event.Topic, name})
			case t.Object != nil:
				add(Edge{Object, t.Object.Prefix, name})
			case t.Schedule != nil:
				add(Edge{Schedule, t.Schedule.Cron, name})
			}
		}
		g := f.Grants
		for _, p := range append(append([]string{}, g.KV.Read...), g.KV.Write...) {
			add(Edge{KV, name, p})
		}
		for _, p := range append(append([]string{}, g.Objects.Read...), g.Objects.Write...) {
			add(Edge{Objects, name, p})
		}
		for _, p := range g.Events.Publish {
			add(Edge{Publish, name, p})
		}
		for _, h := range g.Egress.Hosts {
			if p, err := manifest.ParseHostPattern(h); err == nil {
				h = p.String()
			}
			add(Edge{Fetch, name, h})
		}
		for _, fn := range g.Invoke {
			add(Edge{Invoke, name, fn})
		}
		for _, s := range g.Secrets {
			add(Edge{Secret, name, s})
		}
	}
	return out
}

// RouteName is how a route is named in the graph: "GET /items/{id}".
func RouteName(method, path string) string { return method + " " + path }

// Compare puts the declared edges of m beside the observed ones: one
// GraphEdge per edge either has, with its flags (adminapi.Flag*). dropped
// is what Observed reported.
func Compare(app string, m *manifest.Manifest, observed []Record, dropped int64) adminapi.Graph {
	type row struct {
		declared bool
		rec      Record
	}
	rows := map[Edge]*row{}
	for _, e := range Declared(m) {
		rows[e] = &row{declared: true, rec: Record{Kind: e.Kind, From: e.From, To: e.To}}
	}
	for _, rec := range observed {
		e := rec.Edge()
		r, ok := rows[e]
		if !ok {
			r = &row{rec: Record{Kind: e.Kind, From: e.From, To: e.To}}
			rows[e] = r
		}
		r.rec.Count += rec.Count
		r.rec.Refused += rec.Refused
		if rec.LastSeen.After(r.rec.LastSeen) {
			r.rec.LastSeen = rec.LastSeen
		}
		if rec.LastRefused.After(r.rec.LastRefused) {
			r.rec.LastRefused = rec.LastRefused
		}
	}
	g := adminapi.Graph{App: app, Edges: make([]adminapi.GraphEdge, 0, len(rows)), Dropped: dropped}
	for e, r := range rows {
		from, to := e.Kind.Nodes()
		ge := adminapi.GraphEdge{
			From: e.From, To: e.To, Kind: string(e.Kind), FromType: from, ToType: to,
			Declared: r.declared, Observed: r.rec.Count > 0 || r.rec.Refused > 0,
			Count: r.rec.Count, LastSeen: timePtr(r.rec.LastSeen),
			Refused: r.rec.Refused > 0, RefusedCount: r.rec.Refused, LastRefused: timePtr(r.rec.LastRefused),
		}
		switch {
		case r.declared && r.rec.Count == 0 && e.Kind.Trigger():
			ge.Flags = append(ge.Flags, adminapi.FlagNeverTriggered)
		case r.declared && r.rec.Count == 0:
			ge.Flags = append(ge.Flags, adminapi.FlagNarrow)
		}
		if r.rec.Refused > 0 {
			ge.Flags = append(ge.Flags, adminapi.FlagOutside)
		}
		g.Edges = append(g.Edges, ge)
	}
	order := map[string]int{}
	for i, k := range Kinds {
		order[string(k)] = i
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		if a.From != b.From {
			return a.From < b.From
		}
		return a.To < b.To
	})
	return g
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Report is app's graph as GET /v1/apps/{app}/graph answers it: this
// server's counts flushed first, then every server's records read and
// compared with m, the app's active manifest. Counts other servers have
// not flushed yet (at most FlushEvery old) are not in it.
func (r *Recorder) Report(ctx context.Context, app string, m *manifest.Manifest) (adminapi.Graph, error) {
	if err := r.Flush(ctx); err != nil {
		// What was flushed before is still worth showing; the log says
		// what could not be added.
		r.log.Warn("call graph flush failed; the graph may be behind", logkey.App, app, logkey.Error, err)
	}
	observed, dropped, err := Observed(ctx, r.cfg.Store, app)
	if err != nil {
		return adminapi.Graph{}, fmt.Errorf("graph of %s: %w", app, err)
	}
	return Compare(app, m, observed, dropped), nil
}

// Observations is what least-privilege advice (internal/advise) reads of
// app: this server's counts flushed first, then every server's edges and
// names (UseName).
func (r *Recorder) Observations(ctx context.Context, app string) (edges, names []Record, err error) {
	if err := r.Flush(ctx); err != nil {
		r.log.Warn("call graph flush failed; the advice may be behind", logkey.App, app, logkey.Error, err)
	}
	if edges, _, err = Observed(ctx, r.cfg.Store, app); err != nil {
		return nil, nil, fmt.Errorf("observations of %s: %w", app, err)
	}
	if names, _, err = ObservedNames(ctx, r.cfg.Store, app); err != nil {
		return nil, nil, fmt.Errorf("observations of %s: %w", app, err)
	}
	return edges, names, nil
}
