package funclog

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/testkit/cputime"
)

// BenchmarkInvocationRecord is what tracing adds to the one log record
// every invocation writes: a span id, three more fields, and the subject
// of the trace's bucket, which the stream indexes (what lets `aegis trace`
// read 1/256 of the log). "untraced" is
// the record as it was before traces, on one subject per function. Each
// record is stored with an acknowledgement so the stream's own work is in
// the figure; cpu-ns/op is the whole process's, the embedded NATS server's
// included. docs/performance.md compares the difference with the echo
// round trip.
func BenchmarkInvocationRecord(b *testing.B) {
	ctx := context.Background()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close(ctx)
	l, err := Open(ctx, node, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	base := Record{Level: "info", Msg: "invocation", App: "echo", Function: "echo", Version: "v1",
		RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "http", DurationMS: 0.042, Status: 200}
	for _, traced := range []bool{false, true} {
		name := "untraced"
		if traced {
			name = "traced"
		}
		b.Run(name, func(b *testing.B) {
			var w writer
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				r := base
				r.Time = time.Now().UTC()
				if traced {
					r.TraceID = telemetry.NewID()
					r.SpanID = telemetry.NewSpanID()
					r.ParentID = "00f067aa0ba902b7"
				}
				w.buf = appendRecord(w.buf[:0], &r)
				subject := subjectPrefix + r.App + "." + r.Function
				if traced {
					subject = w.subjectOf(&r)
				}
				if _, err := node.Publish(ctx, subject, w.buf, nil, ""); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := cputime.Process() - start; cpu > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
