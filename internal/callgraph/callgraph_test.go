package callgraph

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/manifest"
)

// recorder returns a Recorder on s whose flusher never fires by itself:
// the tests flush when they mean to.
func recorder(t *testing.T, s Store, maxEdges int) *Recorder {
	t.Helper()
	r := New(Config{Store: s, FlushEvery: time.Hour, MaxEdges: maxEdges})
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func observed(t *testing.T, s Store, app string) (map[Edge]Record, int64) {
	t.Helper()
	recs, dropped, err := Observed(context.Background(), s, app)
	if err != nil {
		t.Fatal(err)
	}
	out := map[Edge]Record{}
	for _, r := range recs {
		if _, dup := out[r.Edge()]; dup {
			t.Fatalf("edge %v stored twice", r.Edge())
		}
		out[r.Edge()] = r
	}
	return out, dropped
}

// Two servers sharing one bucket add their counts up, whatever the order
// of their flushes, and concurrent flushes lose nothing to the races.
func TestRecordersSharingAStoreAddUp(t *testing.T) {
	ctx := context.Background()
	store := memkv.New()
	a, b := recorder(t, store, 0), recorder(t, store, 0)
	route := Edge{HTTP, "POST /entries", "save-entry"}
	table := Edge{KV, "save-entry", "entries"}
	secret := Edge{KV, "save-entry", "secrets"}

	var wg sync.WaitGroup
	for _, r := range []*Recorder{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r.Use("diary", route)
				r.Use("diary", table)
				if i%50 == 0 {
					r.Refused("diary", secret)
				}
				if i%20 == 0 {
					if err := r.Flush(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, r := range []*Recorder{a, b} {
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, dropped := observed(t, store, "diary")
	if dropped != 0 {
		t.Errorf("dropped = %d, want 0", dropped)
	}
	if got[route].Count != 400 || got[table].Count != 400 {
		t.Errorf("counts = %d, %d; want 400 each (two servers × 200)", got[route].Count, got[table].Count)
	}
	if s := got[secret]; s.Count != 0 || s.Refused != 8 || s.LastRefused.IsZero() || !s.LastSeen.IsZero() {
		t.Errorf("refused edge = %+v, want 8 refusals and no use", s)
	}
	if got[route].LastSeen.IsZero() || time.Since(got[route].LastSeen) > time.Minute {
		t.Errorf("last seen = %v", got[route].LastSeen)
	}
	if len(got) != 3 {
		t.Errorf("edges = %v, want 3", got)
	}
	// Another app's edges are its own.
	if other, _ := observed(t, store, "dia"); len(other) != 0 {
		t.Errorf("app dia sees %v", other)
	}
}

// A write that fails keeps its count for the next flush.
func TestFailedFlushKeepsCounts(t *testing.T) {
	ctx := context.Background()
	store := memkv.New()
	r := recorder(t, store, 0)
	e := Edge{Publish, "save-entry", "entries"}
	r.Use("diary", e)
	store.SetFail(errors.New("bucket down"))
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush to a failing store succeeded")
	}
	store.SetFail(nil)
	r.Use("diary", e)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := observed(t, store, "diary"); got[e].Count != 2 {
		t.Errorf("count = %d, want 2", got[e].Count)
	}
}

// The distinct edges of an app are bounded in memory and in the bucket
// (across servers); uses past the bound are counted as dropped, and edges
// already kept go on counting.
func TestEdgesAreBoundedPerApp(t *testing.T) {
	ctx := context.Background()
	store := memkv.New()
	a, b := recorder(t, store, 3), recorder(t, store, 3)
	host := func(i int) Edge { return Edge{Fetch, "f", "h" + string(rune('a'+i)) + ".example"} }
	for i := range 5 {
		a.Use("app", host(i)) // two past the bound in memory
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.Use("app", host(0)) // already in the bucket: counted
	for i := 5; i < 8; i++ {
		b.Use("app", host(i)) // h5, h6 within b's bound but the bucket is full; h7 past b's bound
	}
	a.Use("app", host(1))
	if err := errors.Join(b.Flush(ctx), a.Flush(ctx)); err != nil {
		t.Fatal(err)
	}
	got, dropped := observed(t, store, "app")
	if len(got) != 3 {
		t.Fatalf("edges kept = %d, want 3: %v", len(got), got)
	}
	if dropped != 5 {
		t.Errorf("dropped = %d, want 5 (3 in memory, 2 at the bucket)", dropped)
	}
	if got[host(0)].Count != 2 || got[host(1)].Count != 2 {
		t.Errorf("kept edges' counts = %d, %d; want 2 each", got[host(0)].Count, got[host(1)].Count)
	}
	// Another app has its own bound.
	a.Use("other", host(0))
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := observed(t, store, "other"); got[host(0)].Count != 1 {
		t.Errorf("other app's edge = %v", got)
	}
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *Recorder
	r.Use("a", Edge{HTTP, "GET /", "f"})
	r.Refused("a", Edge{KV, "f", "t"})
	if err := errors.Join(r.Flush(context.Background()), r.Close(context.Background())); err != nil {
		t.Fatal(err)
	}
}

const diary = `app: diary
functions:
  save-entry:
    source: ./save
    triggers:
      - http: {method: POST, path: "/entries/{id}"}
    grants:
      kv: {read: [settings], write: [entries]}
      objects: {write: ["photos/*"]}
      events: {publish: [entry.saved]}
      egress: {hosts: [API.Example.com]}
      invoke: [thumb]
  thumb:
    source: ./thumb
    triggers:
      - http: {method: GET, path: /thumb, private: true}
      - event: {topic: entry.saved}
      - object: {prefix: photos/}
      - schedule: {cron: "@every 1h"}
`

func TestCompareDeclaredAgainstObserved(t *testing.T) {
	m, err := manifest.Parse("aegis.yaml", []byte(diary))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	obs := []Record{
		{Kind: HTTP, From: "POST /entries/{id}", To: "save-entry", Count: 3, LastSeen: now},
		{Kind: KV, From: "save-entry", To: "entries", Count: 3, LastSeen: now},
		{Kind: KV, From: "save-entry", To: "settings", Refused: 1, LastRefused: now}, // a write to a read grant
		{Kind: KV, From: "save-entry", To: "secrets", Refused: 2, LastRefused: now},
		{Kind: Fetch, From: "save-entry", To: "api.example.com", Count: 1, LastSeen: now},
		{Kind: Event, From: "entry.saved", To: "thumb", Count: 1, LastSeen: now},
	}
	g := Compare("diary", m, obs, 4)
	if g.App != "diary" || g.Dropped != 4 {
		t.Errorf("graph = %s, dropped %d", g.App, g.Dropped)
	}
	edges := map[string]adminapi.GraphEdge{}
	for _, e := range g.Edges {
		edges[e.Kind+"|"+e.From+"|"+e.To] = e
	}
	want := map[string]struct {
		declared, observed, refused bool
		count                       int64
		flags                       []string
		from, to                    string
	}{
		"http|POST /entries/{id}|save-entry": {true, true, false, 3, nil, "route", "function"},
		"http|GET /thumb|thumb":              {true, false, false, 0, []string{adminapi.FlagNeverTriggered}, "route", "function"},
		"event|entry.saved|thumb":            {true, true, false, 1, nil, "topic", "function"},
		"object|photos/|thumb":               {true, false, false, 0, []string{adminapi.FlagNeverTriggered}, "prefix", "function"},
		"schedule|@every 1h|thumb":           {true, false, false, 0, []string{adminapi.FlagNeverTriggered}, "schedule", "function"},
		"kv|save-entry|entries":              {true, true, false, 3, nil, "function", "table"},
		"kv|save-entry|settings":             {true, true, true, 0, []string{adminapi.FlagNarrow, adminapi.FlagOutside}, "function", "table"},
		"kv|save-entry|secrets":              {false, true, true, 0, []string{adminapi.FlagOutside}, "function", "table"},
		"objects|save-entry|photos/*":        {true, false, false, 0, []string{adminapi.FlagNarrow}, "function", "objects"},
		"publish|save-entry|entry.saved":     {true, false, false, 0, []string{adminapi.FlagNarrow}, "function", "topic"},
		"fetch|save-entry|api.example.com":   {true, true, false, 1, nil, "function", "host"},
		"invoke|save-entry|thumb":            {true, false, false, 0, []string{adminapi.FlagNarrow}, "function", "function"},
	}
	for k, w := range want {
		e, ok := edges[k]
		if !ok {
			t.Errorf("no edge %s in %v", k, g.Edges)
			continue
		}
		if e.Declared != w.declared || e.Observed != w.observed || e.Refused != w.refused || e.Count != w.count ||
			!slices.Equal(e.Flags, w.flags) || e.FromType != w.from || e.ToType != w.to {
			t.Errorf("%s = %+v, want %+v", k, e, w)
		}
		if (e.LastSeen != nil) != (w.count > 0) {
			t.Errorf("%s last_seen = %v with count %d", k, e.LastSeen, w.count)
		}
	}
	if len(edges) != len(want) {
		t.Errorf("%d edges, want %d: %v", len(edges), len(want), g.Edges)
	}
	// Triggers come first, then host calls, in a stable order.
	if g.Edges[0].Kind != "http" || g.Edges[len(g.Edges)-1].Kind != "objects" {
		t.Errorf("order: first %s, last %s", g.Edges[0].Kind, g.Edges[len(g.Edges)-1].Kind)
	}
}

// The graph as the admin API answers it: this server's counts flushed
// first, then compared.
func TestReportFlushesFirst(t *testing.T) {
	store := memkv.New()
	r := recorder(t, store, 0)
	m, err := manifest.Parse("aegis.yaml", []byte(diary))
	if err != nil {
		t.Fatal(err)
	}
	r.Use("diary", Edge{HTTP, "POST /entries/{id}", "save-entry"})
	g, err := r.Report(context.Background(), "diary", m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range g.Edges {
		if e.Kind == "http" && e.To == "save-entry" && e.Count != 1 {
			t.Errorf("route edge count = %d, want 1", e.Count)
		}
	}
	store.SetFail(aegis.ErrUnavailable)
	if _, err := r.Report(context.Background(), "diary", m); !errors.Is(err, aegis.ErrUnavailable) {
		t.Errorf("report on a failing store = %v", err)
	}
}

// Names are kept apart from the edges: their own records and bound, never
// in the graph, never a new-edge signal; two servers add them up.
func TestNamesApartFromEdges(t *testing.T) {
	ctx := context.Background()
	store := memkv.New()
	var newEdges []Edge
	var mu sync.Mutex
	a := New(Config{Store: store, FlushEvery: time.Hour, MaxEdges: 2, OnNewEdge: func(_ string, e Edge, _ time.Time) {
		mu.Lock()
		newEdges = append(newEdges, e)
		mu.Unlock()
	}})
	t.Cleanup(func() { _ = a.Close(ctx) })
	b := recorder(t, store, 2)
	grant := Edge{KV, "save-entry", "*"}
	entries := Edge{KVWrite, "save-entry", "entries"}
	a.Use("diary", grant)
	a.UseName("diary", entries)
	b.UseName("diary", entries)
	b.UseName("diary", Edge{KVRead, "save-entry", "users"})
	b.UseName("diary", Edge{KVRead, "save-entry", "audit"}) // past the bound of 2
	b.UseName("diary", Edge{KVRead, "save-entry", ""})      // no name: not kept
	edges, names, err := a.Observations(ctx, "diary")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(edges) != 1 || edges[0].Edge() != grant || len(names) != 1 || names[0].Edge() != entries {
		t.Fatalf("edges %v, names %v: want the grant edge and one name", edges, names)
	}
	recs, dropped, err := ObservedNames(ctx, store, "diary")
	if err != nil {
		t.Fatal(err)
	}
	got := map[Edge]int64{}
	for _, r := range recs {
		got[r.Edge()] = r.Count
	}
	want := map[Edge]int64{entries: 2, {KVRead, "save-entry", "users"}: 1}
	if !maps.Equal(got, want) || dropped != 1 {
		t.Errorf("names = %v, dropped %d; want %v, dropped 1", got, dropped, want)
	}
	if g, _ := observed(t, store, "diary"); len(g) != 1 {
		t.Errorf("edges = %v: names must not be edges", g)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(newEdges, []Edge{grant}) {
		t.Errorf("new edges = %v, want only the grant edge", newEdges)
	}
}
