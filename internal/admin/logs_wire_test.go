package admin

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/funclog"
)

// The log stream is the one admin body not declared in adminapi: the
// client reads any flat record (client.LogRecord: the shared log keys
// named, the rest in Attrs), and the server writes funclog.Record. This
// keeps the two in step: every field of a record, written as GET /v1/logs
// writes it, reaches the client under the name it is printed with.
func TestLogRecordWire(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	rec := funclog.Record{
		Time: t0, Level: "ERROR", Msg: "invocation", App: "shop", Function: "pay", Version: "v3",
		RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "http", DurationMS: 12.5, Status: 500, Error: "function failed",
		Capability: "kv.put", Resource: "greetings/last", Reason: "no kv grant",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentID: "b7ad6b7169203331", Attempt: 2,
	}
	// Every field is set, so a field added to funclog.Record without a
	// place on the client side fails here.
	for i, v := 0, reflect.ValueOf(rec); i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("set funclog.Record.%s in this test", v.Type().Field(i).Name)
		}
	}

	var line bytes.Buffer
	if err := json.NewEncoder(&line).Encode(&rec); err != nil { // as logs does
		t.Fatal(err)
	}
	var got client.LogRecord
	if err := json.Unmarshal(line.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := client.LogRecord{
		Time: t0, Level: "ERROR", Msg: "invocation", App: "shop", Function: "pay",
		RequestID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Attrs: map[string]any{"version": "v3", "trigger": "http", "duration_ms": 12.5, "status": 500.0, "error": "function failed",
			"capability": "kv.put", "resource": "greetings/last", "reason": "no kv grant",
			"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "parent_id": "b7ad6b7169203331", "attempt": 2.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("client read %s as\n%+v\nwant\n%+v", line.Bytes(), got, want)
	}

	// A guest's own log line has only the named fields.
	line.Reset()
	if err := json.NewEncoder(&line).Encode(&funclog.Record{Time: t0, Level: "INFO", Msg: "hello", App: "shop", Function: "pay"}); err != nil {
		t.Fatal(err)
	}
	got = client.LogRecord{}
	if err := json.Unmarshal(line.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if want := (client.LogRecord{Time: t0, Level: "INFO", Msg: "hello", App: "shop", Function: "pay"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("client read %s as %+v, want %+v", line.Bytes(), got, want)
	}
}
