package capability

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/manifest"
)

// Every host call is counted on its call-graph edge: an allowed one on the
// grant that allowed it, a refused one on what the guest asked for.
func TestHostCallsCountedOnTheirEdges(t *testing.T) {
	ctx := context.Background()
	store := memkv.New()
	graph := callgraph.New(callgraph.Config{Store: store, FlushEvery: time.Hour})
	t.Cleanup(func() { _ = graph.Close(ctx) })
	hs := newHarness(t, func(c *Config) { c.Graph = graph })
	c := caller(manifest.Grants{
		KV:      manifest.ReadWrite{Read: []string{"settings"}, Write: []string{"entries"}},
		Objects: manifest.ReadWrite{Write: []string{"photos/*"}},
		Events:  manifest.EventGrants{Publish: []string{"entry.*"}},
		Invoke:  []string{"thumb"},
	})
	h := hs.host
	_ = h.KVPut(ctx, c, "entries", "a", []byte("v"))
	_, _ = h.KVGet(ctx, c, "entries", "a")
	_ = h.KVPut(ctx, c, "settings", "a", []byte("v")) // read grant only
	_ = h.KVPut(ctx, c, "secrets", "a", []byte("v"))
	_ = h.ObjectPut(ctx, c, "photos/2024/a.jpg", []byte("x"))
	_, _ = h.ObjectList(ctx, c, "photos/2024/")
	_ = h.ObjectPut(ctx, c, "private/keys/a", []byte("x"))
	_ = h.Publish(ctx, c, "entry.saved", []byte("{}"))
	_ = h.Publish(ctx, c, "billing.charge", []byte("{}"))
	_, _ = h.Fetch(ctx, c, &sandbox.FetchRequest{Method: "GET", URL: "https://evil.example.net:8443/x"})
	_, _ = h.Invoke(ctx, caller(manifest.Grants{}), &sandbox.InvokeRequest{Method: "GET", Path: "/admin?x=1"})
	got := observedEdges(t, graph, store, "diary")
	want := map[callgraph.Edge][2]int64{
		{Kind: callgraph.KV, From: "save-entry", To: "entries"}:             {2, 0},
		{Kind: callgraph.KV, From: "save-entry", To: "settings"}:            {0, 1},
		{Kind: callgraph.KV, From: "save-entry", To: "secrets"}:             {0, 1},
		{Kind: callgraph.Objects, From: "save-entry", To: "photos/*"}:       {2, 0},
		{Kind: callgraph.Objects, From: "save-entry", To: "private/keys/*"}: {0, 1},
		{Kind: callgraph.Publish, From: "save-entry", To: "entry.*"}:        {1, 0},
		{Kind: callgraph.Publish, From: "save-entry", To: "billing.charge"}: {0, 1},
		{Kind: callgraph.Fetch, From: "save-entry", To: "evil.example.net"}: {0, 1},
		{Kind: callgraph.Invoke, From: "save-entry", To: "GET /admin"}:      {0, 1},
	}
	for e, w := range want {
		if got[e] != w {
			t.Errorf("%v: (count, refused) = %v, want %v", e, got[e], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("edges = %v, want %v", got, want)
	}
	// Beside the edges, the names each allowed call reached, by access:
	// tables, object folders, topics; never a key, never a refused name.
	recs, _, err := callgraph.ObservedNames(ctx, store, "diary")
	if err != nil {
		t.Fatal(err)
	}
	names := map[callgraph.Edge]int64{}
	for _, r := range recs {
		names[r.Edge()] = r.Count
	}
	wantNames := map[callgraph.Edge]int64{
		{Kind: callgraph.KVWrite, From: "save-entry", To: "entries"}:            1,
		{Kind: callgraph.KVRead, From: "save-entry", To: "entries"}:             1,
		{Kind: callgraph.ObjectsWrite, From: "save-entry", To: "photos/2024/*"}: 1,
		{Kind: callgraph.ObjectsRead, From: "save-entry", To: "photos/2024/*"}:  1,
		{Kind: callgraph.Publish, From: "save-entry", To: "entry.saved"}:        1,
	}
	if !maps.Equal(names, wantNames) {
		t.Errorf("names = %v, want %v", names, wantNames)
	}
}

// An object call is named by its key's folder when its grant covers the
// folder, by the grant otherwise: never by a key no grant names.
func TestObjectName(t *testing.T) {
	for _, tt := range []struct{ grant, key, want string }{
		{"images/*", "images/a.jpg", "images/*"},
		{"*", "images/2024/a.jpg", "images/2024/*"},
		{"images/a.jpg", "images/a.jpg", "images/a.jpg"},
		{"images/a*", "images/ab.jpg", "images/a*"},
		{"*", "a.txt", "a.txt"},
		{"*", "*", "*"}, // a listing of everything
		{"", "images/a.jpg", ""},
	} {
		if got := objectName(tt.grant, tt.key); got != tt.want {
			t.Errorf("objectName(%q, %q) = %q, want %q", tt.grant, tt.key, got, tt.want)
		}
	}
}

// observedEdges flushes graph into store and returns app's edges with
// their use and refusal counts.
func observedEdges(t *testing.T, graph *callgraph.Recorder, store callgraph.Store, app string) map[callgraph.Edge][2]int64 {
	t.Helper()
	ctx := context.Background()
	if err := graph.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _, err := callgraph.Observed(ctx, store, app)
	if err != nil {
		t.Fatal(err)
	}
	got := map[callgraph.Edge][2]int64{}
	for _, r := range recs {
		got[r.Edge()] = [2]int64{r.Count, r.Refused}
	}
	return got
}

// An allowed fetch is counted on the grant that allowed it (here the
// loopback test server's address, the only place the test may reach).
func TestAllowedFetchCountedOnItsHost(t *testing.T) {
	ctx := context.Background()
	store := memkv.New()
	graph := callgraph.New(callgraph.Config{Store: store, FlushEvery: time.Hour})
	t.Cleanup(func() { _ = graph.Close(ctx) })
	env := newFetchEnv(t, testMux(), nil, func(c *Config) { c.Graph = graph })
	g := egress("127.0.0.1")
	for range 2 {
		resp, err := env.fetch(g, &sandbox.FetchRequest{Method: "GET", URL: env.srv.URL + "/ok"})
		if err != nil || resp.Status != 200 {
			t.Fatalf("fetch: %v %+v", err, resp)
		}
	}
	got := observedEdges(t, graph, store, "diary")
	if e := (callgraph.Edge{Kind: callgraph.Fetch, From: "save-entry", To: "127.0.0.1"}); got[e] != [2]int64{2, 0} {
		t.Errorf("edges %v: want %v counted twice, never refused", got, e)
	}
}
