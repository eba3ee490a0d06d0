package funclog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
)

// MaxTraceRecords bounds what one trace query reads: a trace is a few
// invocations and their lines; a runaway chain is stopped at the hop limit
// long before this many.
const MaxTraceRecords = 10000

// Trace reads the records of one trace and assembles its tree. keep, when
// set, decides which records the reader may see (an admin token's apps):
// a hidden invocation's children are still shown, under the trace. It
// returns aegis.ErrNotFound when the log holds no visible record of it.
func (l *Log) Trace(ctx context.Context, traceID string, keep func(*Record) bool) (*adminapi.Trace, error) {
	var recs []Record
	err := l.Read(ctx, Query{Trace: traceID, Limit: MaxTraceRecords}, func(r *Record) error {
		if keep == nil || keep(r) {
			recs = append(recs, *r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t := BuildTrace(traceID, recs)
	if t.Spans == 0 && len(recs) == 0 {
		return nil, fmt.Errorf("trace %s: %w", traceID, aegis.ErrNotFound)
	}
	return t, nil
}

// IsInvocation reports whether r is an invocation's record (run, failed
// or refused) rather than a line the function logged: only those name
// their trigger.
func (r *Record) IsInvocation() bool { return r.Trigger != "" && r.SpanID != "" }

// BuildTrace assembles the causal tree of a trace's records: one node per
// invocation record, under the node of its parent span; a node whose
// parent is not among them (the caller outside Aegis, or an invocation
// the reader may not see) is a child of the trace itself. Lines the
// functions logged hang under their invocation's node. Siblings are in
// start order.
func BuildTrace(traceID string, recs []Record) *adminapi.Trace {
	t := &adminapi.Trace{TraceID: traceID, Outcome: "ok", Children: []*adminapi.TraceNode{}}
	nodes := make(map[string]*adminapi.TraceNode)
	var order []*adminapi.TraceNode
	var first, last time.Time
	for i := range recs {
		r := &recs[i]
		if !r.IsInvocation() {
			continue
		}
		dur := time.Duration(r.DurationMS * float64(time.Millisecond))
		n := &adminapi.TraceNode{App: r.App, Function: r.Function, Version: r.Version, Trigger: r.Trigger,
			Outcome: outcome(r), Status: r.Status, Error: r.Error, Start: r.Time.Add(-dur), DurationMS: r.DurationMS,
			SpanID: r.SpanID, ParentID: r.ParentID, RequestID: r.RequestID, Attempt: r.Attempt,
			Retries: max(r.Attempt-1, 0), Children: []*adminapi.TraceNode{}}
		if _, dup := nodes[r.SpanID]; dup {
			continue // one span, one node: a record read twice is not two invocations
		}
		nodes[r.SpanID] = n
		order = append(order, n)
		if n.Outcome != "ok" {
			t.Outcome = "error"
		}
		if first.IsZero() || n.Start.Before(first) {
			first = n.Start
		}
		if r.Time.After(last) {
			last = r.Time
		}
	}
	for i := range recs {
		r := &recs[i]
		if r.IsInvocation() {
			continue
		}
		if n := nodes[r.SpanID]; n != nil {
			n.Logs = append(n.Logs, adminapi.TraceLog{Time: r.Time, Level: r.Level, Msg: r.Msg,
				Capability: r.Capability, Resource: r.Resource, Reason: r.Reason})
		}
	}
	for _, n := range order {
		if p := nodes[n.ParentID]; p != nil && !inCycle(n, nodes) {
			p.Children = append(p.Children, n)
		} else {
			t.Children = append(t.Children, n)
		}
	}
	byStart := func(a, b *adminapi.TraceNode) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	}
	for _, n := range order {
		slices.SortFunc(n.Children, byStart)
	}
	slices.SortFunc(t.Children, byStart)
	t.Spans = len(order)
	if len(order) > 0 {
		t.DurationMS = float64(last.Sub(first).Microseconds()) / 1000
	}
	return t
}

// inCycle reports whether following parent ids up from n comes back to
// n: records that claim to be each other's cause (only forged ones can)
// are shown at the top rather than making the tree a loop.
func inCycle(n *adminapi.TraceNode, nodes map[string]*adminapi.TraceNode) bool {
	p := nodes[n.ParentID]
	for i := 0; p != nil && i <= len(nodes); i++ {
		if p == n {
			return true
		}
		p = nodes[p.ParentID]
	}
	return p != nil // longer than the trace: a loop not through n; not under it either
}

// outcome is "ok" for an invocation that succeeded, else why it did not.
func outcome(r *Record) string {
	if r.Level != "error" && r.Reason == "" {
		return "ok"
	}
	if r.Reason != "" {
		return r.Reason
	}
	return "error"
}
