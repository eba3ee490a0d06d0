package funclog

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBuildTrace(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	recs := []Record{
		// out of order, as a log read across subjects gives them
		{Time: t0.Add(30 * time.Millisecond), Level: "info", Msg: "invocation", App: "d", Function: "index", Trigger: "event",
			DurationMS: 2, Status: 200, TraceID: trace, SpanID: "cccccccccccccccc", ParentID: "bbbbbbbbbbbbbbbb", Attempt: 2},
		{Time: t0.Add(10 * time.Millisecond), Level: "info", Msg: "invocation", App: "d", Function: "save", Trigger: "http",
			DurationMS: 10, Status: 201, TraceID: trace, SpanID: "aaaaaaaaaaaaaaaa", ParentID: "00f067aa0ba902b7"},
		{Time: t0.Add(5 * time.Millisecond), Level: "info", Msg: "saving", App: "d", Function: "save", TraceID: trace, SpanID: "aaaaaaaaaaaaaaaa"},
		{Time: t0.Add(20 * time.Millisecond), Level: "error", Msg: "invocation failed", App: "d", Function: "thumb", Trigger: "object",
			DurationMS: 4, Reason: "timeout", TraceID: trace, SpanID: "bbbbbbbbbbbbbbbb", ParentID: "aaaaaaaaaaaaaaaa", Attempt: 1},
		// two forged records that claim each other as parent
		{Time: t0, Level: "info", Msg: "invocation", App: "d", Function: "x", Trigger: "event", TraceID: trace, SpanID: "1111111111111111", ParentID: "2222222222222222"},
		{Time: t0, Level: "info", Msg: "invocation", App: "d", Function: "y", Trigger: "event", TraceID: trace, SpanID: "2222222222222222", ParentID: "1111111111111111"},
	}
	tr := BuildTrace(trace, recs)
	if tr.Spans != 5 || tr.Outcome != "error" {
		t.Fatalf("spans %d outcome %q", tr.Spans, tr.Outcome)
	}
	if _, err := json.Marshal(tr); err != nil {
		t.Fatal(err) // a loop would never end
	}
	var save = tr.Children[len(tr.Children)-1]
	for _, c := range tr.Children {
		if c.Function == "save" {
			save = c
		}
	}
	if save.Function != "save" || save.Trigger != "http" || save.Outcome != "ok" || len(save.Logs) != 1 || save.Logs[0].Msg != "saving" {
		t.Fatalf("root %+v", save)
	}
	if !save.Start.Equal(t0) {
		t.Errorf("start %v, want the record's time less its duration %v", save.Start, t0)
	}
	if len(save.Children) != 1 || save.Children[0].Function != "thumb" || save.Children[0].Outcome != "timeout" {
		t.Fatalf("save's children %+v", save.Children)
	}
	idx := save.Children[0].Children
	if len(idx) != 1 || idx[0].Function != "index" || idx[0].Retries != 1 || idx[0].Trigger != "event" {
		t.Fatalf("thumb's children %+v", idx)
	}
	if len(tr.Children) != 3 {
		t.Errorf("top level has %d nodes, want save and the two forged ones", len(tr.Children))
	}
}
