package e2e

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
)

// diaryKey deploys the travel diary on the shared server (unchanged when
// another test did) and creates a key of the given name for it.
func diaryKey(t *testing.T, in *instance, name string) string {
	t.Helper()
	deployTravelDiary(t, in)
	code, out, errs := aegisCLI(t, in, "keys", "create", name, "-o", "json")
	if code != 0 {
		t.Fatalf("aegis keys create: %d %s", code, errs)
	}
	var k struct{ Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key == "" {
		t.Fatalf("keys create -o json: %q", out)
	}
	return k.Key
}

// traceTree runs `aegis trace ID -o json` until the tree has want
// invocations, and returns it.
func traceTree(t *testing.T, in *instance, id string, want int) *client.Trace {
	t.Helper()
	var tr client.Trace
	eventually(t, 30*time.Second, "the trace to hold every invocation", func() bool {
		code, out, errs := aegisCLI(t, in, "trace", id, "-o", "json")
		if code != 0 {
			if strings.Contains(errs, "no trace") {
				return false
			}
			t.Fatalf("aegis trace: exit %d %s", code, errs)
		}
		tr = client.Trace{}
		if err := json.Unmarshal([]byte(out), &tr); err != nil {
			t.Fatalf("aegis trace -o json: %v\n%s", err, out)
		}
		return tr.Spans >= want
	})
	return &tr
}

// The travel-diary upload is one tree: save-entry (the request) →
// make-thumbnail (its image.saved event) → index-entry (the thumbnail's
// event); the caller's traceparent is honoured; every line each hop
// logged carries the trace id; `aegis logs --trace` finds the same.
func TestTraceTravelDiary(t *testing.T) {
	in, _ := sharedServer(t)
	key := diaryKey(t, in, "diary-trace")
	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	entry := map[string]string{"title": "Porto", "text": "Bridges.", "image": base64.StdEncoding.EncodeToString(samplePNG(t, 320, 240))}
	st, body, hdr := call(t, in.gateway, "POST", "/entries", key, entry, "Traceparent", "00-"+traceID+"-"+parent+"-01")
	if st != 201 {
		t.Fatalf("POST /entries: %d %s", st, body)
	}
	if got := hdr.Get("X-Aegis-Trace-Id"); got != traceID {
		t.Fatalf("X-Aegis-Trace-Id %q, want the traceparent's %q", got, traceID)
	}
	if got := hdr.Get("X-Request-Id"); got != traceID {
		t.Errorf("X-Request-Id %q: without one of its own the request is named by its trace", got)
	}

	tr := traceTree(t, in, traceID, 4)
	if tr.TraceID != traceID || len(tr.Children) != 1 || tr.Outcome != "ok" {
		t.Fatalf("trace: %+v", tr)
	}
	save := tr.Children[0]
	if save.Function != "save-entry" || save.Trigger != "http" || save.Outcome != "ok" || save.Status != 201 ||
		save.ParentID != parent || save.App != "travel-diary" {
		t.Fatalf("root: %+v", save)
	}
	if len(save.Children) != 1 || save.Children[0].Function != "make-thumbnail" || save.Children[0].Trigger != "event" {
		b, _ := json.MarshalIndent(save.Children, "", " ")
		t.Fatalf("save-entry's children: %s", b)
	}
	thumb := save.Children[0]
	// thumbnail.created has two consumers: index-entry and notify.
	consumers := map[string]bool{}
	for _, c := range thumb.Children {
		if c.Trigger == "event" && c.Outcome == "ok" {
			consumers[c.Function] = true
		}
	}
	if len(thumb.Children) != 2 || !consumers["index-entry"] || !consumers["notify"] {
		b, _ := json.MarshalIndent(thumb.Children, "", " ")
		t.Fatalf("make-thumbnail's children: %s", b)
	}
	if thumb.Attempt != 1 || thumb.Retries != 0 {
		t.Errorf("make-thumbnail attempt %d retries %d", thumb.Attempt, thumb.Retries)
	}
	if len(save.Logs) == 0 || !strings.Contains(save.Logs[0].Msg, "entry saved") {
		t.Errorf("save-entry's lines are not under its node: %+v", save.Logs)
	}
	if len(thumb.Logs) == 0 || !strings.Contains(thumb.Logs[0].Msg, "thumbnail made") {
		t.Errorf("make-thumbnail's lines are not under its node: %+v", thumb.Logs)
	}

	// What -o json promises, by the literal names a script reads, not
	// through the Go type the CLI itself uses.
	_, raw, _ := aegisCLI(t, in, "trace", traceID, "-o", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	nodes := doc["children"].([]any)
	if len(nodes) == 0 {
		t.Fatalf("no children in %s", raw)
	}
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		for _, k := range []string{"app", "function", "version", "trigger", "outcome", "duration_ms", "children"} {
			if _, ok := n[k]; !ok {
				t.Errorf("a trace node has no %q: %v", k, n)
			}
		}
		if v, _ := n["version"].(string); !strings.HasPrefix(v, "v") {
			t.Errorf("node %v: version %q", n["function"], n["version"])
		}
		if d, _ := n["duration_ms"].(float64); d <= 0 {
			t.Errorf("node %v: duration_ms %v", n["function"], n["duration_ms"])
		}
		for _, c := range n["children"].([]any) {
			walk(c.(map[string]any))
		}
	}
	walk(nodes[0].(map[string]any))

	// The text tree names every hop, indented under its cause.
	code, out, errs := aegisCLI(t, in, "trace", traceID)
	if code != 0 {
		t.Fatalf("aegis trace: %d %s", code, errs)
	}
	iSave, iThumb, iIndex := strings.Index(out, "save-entry"), strings.Index(out, "make-thumbnail"), strings.Index(out, "index-entry")
	if iSave < 0 || iThumb < iSave || iIndex < iThumb {
		t.Errorf("aegis trace:\n%s", out)
	}

	// aegis logs --trace: the three invocation records and every line
	// the hops logged, each with the trace id, and nothing of any other
	// request.
	code, out, errs = aegisCLI(t, in, "logs", "--trace", traceID, "--since", "10m", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis logs --trace: %d %s", code, errs)
	}
	fns := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Function string `json:"function"`
			Msg      string `json:"msg"`
			TraceID  string `json:"trace_id"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("logs line %q: %v", line, err)
		}
		if r.TraceID != traceID {
			t.Errorf("a line of the trace carries trace id %q: %s", r.TraceID, line)
		}
		fns[r.Function]++
	}
	if fns["save-entry"] < 2 || fns["make-thumbnail"] < 2 || fns["index-entry"] < 2 {
		t.Errorf("lines per function %v (each hop's invocation record and its own lines):\n%s", fns, out)
	}

	// Malformed input is refused with exit code 2, before any call.
	if code, _, errs := aegisCLI(t, in, "trace", "not-a-trace"); code != 2 || !strings.Contains(errs, "32 lower-case hex") {
		t.Errorf("aegis trace not-a-trace: %d %s", code, errs)
	}
	if code, _, errs := aegisCLI(t, in, "logs", "--since", "yesterday"); code != 2 {
		t.Errorf("aegis logs --since yesterday: %d %s", code, errs)
	}
	if code, _, errs := aegisCLI(t, in, "trace", "ffffffffffffffffffffffffffffffff"); code != 1 || !strings.Contains(errs, "no trace") {
		t.Errorf("aegis trace of an unknown id: %d %s", code, errs)
	}
}

// Without a traceparent a request starts a trace named by its request id,
// and a malformed traceparent is ignored rather than half-read.
func TestTraceStartsAtTheGateway(t *testing.T) {
	in, _ := sharedServer(t)
	key := diaryKey(t, in, "diary-trace-2")
	for _, tp := range []string{"", "00-zzzz-b7ad6b7169203331-01", "00-00000000000000000000000000000000-b7ad6b7169203331-01"} {
		st, body, hdr := call(t, in.gateway, "GET", "/entries/0123456789abcdef0123456789abcdef", key, nil, "Traceparent", tp)
		if st != 404 {
			t.Fatalf("GET unknown entry: %d %s", st, body)
		}
		id := hdr.Get("X-Aegis-Trace-Id")
		if id == "" || id != hdr.Get("X-Request-Id") || strings.Contains(tp, id) {
			t.Fatalf("traceparent %q: trace %q, request %q", tp, id, hdr.Get("X-Request-Id"))
		}
		tr := traceTree(t, in, id, 1)
		if n := tr.Children[0]; n.Function != "get-entry" || n.Outcome != "ok" || n.Status != 404 || n.ParentID != "" {
			t.Errorf("traceparent %q: node %+v", tp, n)
		}
	}
}

// A function calling another through invoke: the callee is a child of the
// caller in the caller's trace, triggered by "invoke", and the call graph
// counts the invoke edge as observed and declared.
func TestInvokeTracedAndGraphed(t *testing.T) {
	in, key := privateServer(t)
	rep, reqID := invokeVia(t, in, key, "front", map[string]any{"method": "POST", "path": "/private-e2e/back/whoami"})
	if !rep.OK {
		t.Fatalf("front → back: %+v", rep)
	}
	tr := traceTree(t, in, reqID, 2)
	if len(tr.Children) != 1 || tr.Children[0].Function != "front" {
		t.Fatalf("trace root: %+v", tr)
	}
	front := tr.Children[0]
	if len(front.Children) != 1 || front.Children[0].Function != "back" || front.Children[0].Trigger != "invoke" || front.Children[0].Outcome != "ok" {
		b, _ := json.MarshalIndent(front.Children, "", " ")
		t.Fatalf("front's children: %s", b)
	}

	var edge map[string]any
	eventually(t, 10*time.Second, "the invoke edge to be counted", func() bool {
		code, out, errs := aegisCLI(t, in, "graph", "--app", "private", "-o", "json")
		if code != 0 {
			t.Fatalf("aegis graph: exit %d %s", code, errs)
		}
		var g map[string]any
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			t.Fatal(err)
		}
		for _, e := range g["edges"].([]any) {
			e := e.(map[string]any)
			if e["kind"] == "invoke" && e["from"] == "front" && e["to"] == "back" {
				edge = e
			}
		}
		return edge != nil && edge["count"].(float64) >= 1
	})
	if edge["declared"] != true || edge["observed"] != true {
		t.Errorf("the invoke edge: %v", edge)
	}
}
