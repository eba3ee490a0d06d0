package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

// TestCallGraph: `aegis graph` puts an app's declared edges beside the
// observed ones. A grant the function never uses is declared and not
// observed, flagged as one to narrow; a call outside the grants is an
// observed refusal; the route, the publish and the event trigger it
// causes (function → topic → function) are counted.
func TestCallGraph(t *testing.T) {
	in, key := sharedServer(t)
	deployProbe(t, in, "testdata/graph.yaml")

	for range 3 {
		if o, _ := probe(t, in.gateway, key, "graph", "kv-put", map[string]any{"table": "notes", "key": "k", "value": "v"}); !o.OK {
			t.Fatalf("kv.put to a granted table: %+v", o)
		}
	}
	if o, _ := probe(t, in.gateway, key, "graph", "kv-put", map[string]any{"table": "secrets", "key": "k", "value": "v"}); !o.Denied {
		t.Fatalf("kv.put outside the grants: %+v", o)
	}
	if o, _ := probe(t, in.gateway, key, "graph", "publish", map[string]any{"topic": "graph.note", "value": "hi"}); !o.OK {
		t.Fatalf("publish to a granted topic: %+v", o)
	}

	type edgeKey struct{ kind, from, to string }
	var g adminapi.Graph
	edges := map[edgeKey]adminapi.GraphEdge{}
	read := func() {
		code, out, errs := aegisCLI(t, in, "graph", "--app", "graph", "-o", "json")
		if code != 0 {
			t.Fatalf("aegis graph: exit %d: %s", code, errs)
		}
		g = adminapi.Graph{}
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			t.Fatalf("aegis graph -o json: %v: %s", err, out)
		}
		clear(edges)
		for _, e := range g.Edges {
			edges[edgeKey{e.Kind, e.From, e.To}] = e
		}
	}
	// The event is delivered, and its reader's run counted, a moment
	// later: the trigger's edge when the run starts, the reader's kv put
	// during it.
	eventually(t, 10*time.Second, "the event trigger's edge and the reader's kv edge to be counted", func() bool {
		read()
		return edges[edgeKey{"event", "graph.note", "reader"}].Count >= 1 && edges[edgeKey{"kv", "reader", "events"}].Count >= 1
	})
	if g.App != "graph" {
		t.Errorf("app = %q", g.App)
	}

	check := func(k edgeKey, declared, observed, refused bool, count int64, flag string) {
		t.Helper()
		e, ok := edges[k]
		if !ok {
			t.Errorf("no edge %v in %+v", k, g.Edges)
			return
		}
		if e.Declared != declared || e.Observed != observed || e.Refused != refused || e.Count != count {
			t.Errorf("edge %v = declared %v observed %v refused %v count %d; want %v %v %v %d",
				k, e.Declared, e.Observed, e.Refused, e.Count, declared, observed, refused, count)
		}
		if flag != "" && !strings.Contains(strings.Join(e.Flags, ","), flag) {
			t.Errorf("edge %v flags %v, want %q", k, e.Flags, flag)
		}
		if flag == "" && len(e.Flags) > 0 {
			t.Errorf("edge %v flags %v, want none", k, e.Flags)
		}
	}
	check(edgeKey{"http", "POST /graph/{op}", "writer"}, true, true, false, 5, "")
	check(edgeKey{"kv", "writer", "notes"}, true, true, false, 3, "")
	check(edgeKey{"kv", "writer", "never-read"}, true, false, false, 0, adminapi.FlagNarrow)
	check(edgeKey{"kv", "writer", "secrets"}, false, true, true, 0, adminapi.FlagOutside)
	check(edgeKey{"publish", "writer", "graph.note"}, true, true, false, 1, "")
	check(edgeKey{"event", "graph.note", "reader"}, true, true, false, 1, "")
	check(edgeKey{"kv", "reader", "events"}, true, true, false, 1, "")
	if e := edges[edgeKey{"kv", "writer", "secrets"}]; e.RefusedCount != 1 || e.LastRefused == nil {
		t.Errorf("refused edge: %+v", e)
	}

	// The other formats say the same: a table with the flags, and
	// Graphviz with the unused grant dashed and the refusal red.
	code, out, errs := aegisCLI(t, in, "graph", "--app", "graph")
	if code != 0 {
		t.Fatalf("aegis graph: exit %d: %s", code, errs)
	}
	if lineWith(out, "kv", "writer", "never-read", "grant to narrow") == "" ||
		lineWith(out, "kv", "writer", "secrets", "attempt outside the grants") == "" {
		t.Errorf("aegis graph text:\n%s", out)
	}
	code, out, errs = aegisCLI(t, in, "graph", "--app", "graph", "-o", "dot")
	if code != 0 {
		t.Fatalf("aegis graph -o dot: exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, `digraph "graph" {`) ||
		lineWith(out, `"function:writer" -> "table:never-read"`, "style=dashed") == "" ||
		lineWith(out, `"function:writer" -> "table:secrets"`, "color=red") == "" {
		t.Errorf("aegis graph -o dot:\n%s", out)
	}

	// An app that is not deployed has no graph.
	if code, _, errs := aegisCLI(t, in, "graph", "--app", "no-such-app"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("graph of an unknown app: exit %d: %s", code, errs)
	}
}
