package funclog

import (
	"encoding/json"
	"testing"
	"time"
)

var recordSeeds = []Record{
	{},
	{Time: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), Level: "info", Msg: "invocation", App: "echo", Function: "echo",
		Version: "v3", RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "http", DurationMS: 0.412, Status: 200},
	{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Level: "error", Msg: "invocation failed", App: "a", Function: "f",
		DurationMS: 1e-7, Status: 0, Error: "invoke a/f@v1: function timed out <&>", Reason: "timeout"},
	{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Level: "warn", Msg: "capability denied", App: "hello", Function: "greet",
		Version: "v1", RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Capability: "kv.put", Resource: "greetings/last", Reason: "no kv grant"},
	{Time: time.Unix(1700000000, 123456789).UTC(), Level: "warn", Msg: "\x00\x1f\"\\\u2028\xff é\n", App: "a", Function: "f", DurationMS: 1234567.5},
}

func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	for _, r := range recordSeeds {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendRecord(f *testing.F) {
	f.Add("info", "msg", "app", "fn", "v1", "id", "http", 0.5, 200, "", int64(0), "", "", "", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 2)
	f.Add("error", "\xff<\u2028", "", "", "", "", "", 3e-9, -1, "bad \"thing\"", int64(1700000000123456789), "kv.put", "t/\xff<k>", "no kv grant", "x\x00", "", -3)
	f.Fuzz(func(t *testing.T, level, msg, app, fn, version, reqID, trigger string, dur float64, status int, errMsg string, nanos int64,
		capability, resource, reason, traceID, spanID string, attempt int) {
		r := Record{Time: time.Unix(0, nanos).UTC(), Level: level, Msg: msg, App: app, Function: fn, Version: version,
			RequestID: reqID, Trigger: trigger, DurationMS: dur, Status: status, Error: errMsg,
			Capability: capability, Resource: resource, Reason: reason, TraceID: traceID, SpanID: spanID, ParentID: spanID, Attempt: attempt}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Skip("encoding/json refuses it (NaN, infinite, or a time outside years 0-9999)")
		}
		if got := appendRecord(nil, &r); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func TestWriterReusesSubject(t *testing.T) {
	var w writer
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	a := w.subjectOf(&Record{App: "a", Function: "f"})
	b := w.subjectOf(&Record{App: "a", Function: "g"})
	c := w.subjectOf(&Record{App: "ab", Function: "g"})
	d := w.subjectOf(&Record{App: "ab", Function: "g", TraceID: trace})
	e := w.subjectOf(&Record{App: "ab", Function: "g", TraceID: "a.b.>"})
	if a != "aegis.log.a.f._" || b != "aegis.log.a.g._" || c != "aegis.log.ab.g._" || d != "aegis.log.ab.g.4b" || e != "aegis.log.ab.g._" {
		t.Errorf("subjects %q %q %q %q %q", a, b, c, d, e)
	}
}

func TestQueryFilter(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{}, "aegis.log.>"},
		{Query{App: "a"}, "aegis.log.a.*.*"},
		{Query{App: "a", Function: "f"}, "aegis.log.a.f.*"},
		{Query{Trace: trace}, "aegis.log.*.*.4b"},
		{Query{App: "a", Trace: trace}, "aegis.log.a.*.4b"},
	} {
		if got, err := c.q.filter(); err != nil || got != c.want {
			t.Errorf("filter of %+v = %q, %v; want %q", c.q, got, err, c.want)
		}
	}
	if _, err := (Query{Trace: "a.>"}).filter(); err == nil {
		t.Error("a trace id that is not one was accepted")
	}
}
