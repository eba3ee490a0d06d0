// Package funclog keeps the logs of functions: what guests log, what they
// print, and one record per invocation. Records go to a JetStream stream so
// `aegis logs` can read back and follow them after a restart. Writing never
// blocks an invocation: records pass through a bounded queue and are dropped
// (and counted) when it is full, because a slow log must not slow requests.
package funclog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/jsonenc"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Stream and subjects of function logs.
const (
	Stream        = "AEGIS_LOGS"
	subjectPrefix = "aegis.log."
	maxMsg        = 4 << 10
	queueSize     = 4096
)

// Record is one log line of a function.
type Record struct {
	Time       time.Time `json:"time"`
	Level      string    `json:"level"`
	Msg        string    `json:"msg"`
	App        string    `json:"app"`
	Function   string    `json:"function"`
	Version    string    `json:"version,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	DurationMS float64   `json:"duration_ms,omitempty"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	// Capability, Resource and Reason say what a denial refused: the
	// capability ("kv.put"), the name it was asked for ("greetings/last":
	// a table and key, a topic, a host; never a value) and why ("no kv
	// grant"). Reason also names why an invocation failed ("timeout").
	Capability string `json:"capability,omitempty"`
	Resource   string `json:"resource,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// TraceID and SpanID place the line in its trace: the invocation's
	// span (every line a function logs during it carries the same);
	// ParentID, on an invocation record, is the span that caused it.
	// Attempt is an event's delivery attempt (1 for the first).
	TraceID  string `json:"trace_id,omitempty"`
	SpanID   string `json:"span_id,omitempty"`
	ParentID string `json:"parent_id,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
}

// Log is the function log.
type Log struct {
	node    *jetstream.Node
	sink    Sink  // where records go: node, unless Options.Sink
	drops   drops // per function since the last marker (marker.go)
	logger  *slog.Logger
	queue   chan Record // values: a record per invocation costs no allocation
	dropped atomic.Int64
	stop    chan struct{} // closed by Close; the queue itself is never closed so Write cannot panic
	done    chan struct{}
	once    sync.Once
}

// Open ensures the stream (created, or updated to the retention of opts)
// and starts the writer. At most one Options is read.
func Open(ctx context.Context, node *jetstream.Node, logger *slog.Logger, opts ...Options) (*Log, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o = o.withDefaults()
	err := node.EnsureStream(ctx, jetstream.StreamConfig{
		Name: Stream, Subjects: []string{subjectPrefix + ">"},
		MaxAge: o.MaxAge, MaxBytes: o.MaxBytes,
		// Records are best effort already (never acknowledged, dropped
		// when the queue is full); writing each to the file as it comes
		// was a system call per invocation.
		AsyncPersist: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open function log: %w", err)
	}
	l := &Log{node: node, sink: o.Sink, logger: logger, queue: make(chan Record, o.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	if l.sink == nil {
		l.sink = node
	}
	go l.run()
	return l, nil
}

func (l *Log) run() {
	defer close(l.done)
	var w writer
	for {
		select {
		case r := <-l.queue:
			l.publish(&w, &r)
			l.mark(&w, false)
		case <-l.stop:
			for {
				select {
				case r := <-l.queue:
					l.publish(&w, &r)
				default:
					l.mark(&w, true)
					return
				}
			}
		}
	}
}

// writer is the state the one writer goroutine keeps between records: the
// encoding buffer, and the subject of the last record, which is usually
// the next one's too (the lines of one invocation come together).
type writer struct {
	buf                   []byte
	app, function, bucket string
	subject               string
}

// subjectOf is aegis.log.<app>.<function>.<bucket>: the bucket is the
// first two hex characters of the record's trace id ("_" for a line
// outside any trace), so a trace's lines are found by the subject index
// in 1/256 of the log, across every app and function. Not the whole
// trace id: a subject of its own per trace made the stream index every
// trace, which cost about 6 µs of CPU per record (BenchmarkInvocationRecord),
// against next to nothing for 256 subjects per function.
func (w *writer) subjectOf(r *Record) string {
	b := traceBucket(r.TraceID)
	if w.subject == "" || r.App != w.app || r.Function != w.function || b != w.bucket {
		w.app, w.function, w.bucket = r.App, r.Function, b
		w.subject = subjectPrefix + r.App + "." + r.Function + "." + b
	}
	return w.subject
}

// traceBucket is the subject token of a trace id: only for the ids Aegis
// checked (32 hex characters), anything else "_", so a record can never
// name a subject outside its function's.
func traceBucket(id string) string {
	if telemetry.IsID(id) {
		return id[:2]
	}
	return noTrace
}

const noTrace = "_"

func (l *Log) publish(w *writer, r *Record) {
	w.buf = appendRecord(w.buf[:0], r)
	// No ack wait: a confirmation round trip per record cost about a tenth
	// of a warm request's CPU, and these records are best effort already.
	// The connection copies the data, so the buffer is free again at once.
	if err := l.sink.PublishNoAck(w.subjectOf(r), w.buf); err != nil {
		l.logger.Warn("function log write failed", logkey.Error, err)
	}
	if cap(w.buf) > 2*maxMsg {
		w.buf = nil // one huge record must not keep its buffer alive
	}
}

// appendRecord appends r as JSON, byte for byte what encoding/json.Marshal
// writes (TestAppendRecordMatchesEncodingJSON), without its reflection:
// one record is written per invocation.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = jsonenc.AppendString(b, r.Level)
	b = append(b, `,"msg":`...)
	b = jsonenc.AppendString(b, r.Msg)
	b = append(b, `,"app":`...)
	b = jsonenc.AppendString(b, r.App)
	b = append(b, `,"function":`...)
	b = jsonenc.AppendString(b, r.Function)
	b = jsonenc.AppendStringField(b, "version", r.Version)
	b = jsonenc.AppendStringField(b, "request_id", r.RequestID)
	b = jsonenc.AppendStringField(b, "trigger", r.Trigger)
	if r.DurationMS != 0 {
		b = append(b, `,"duration_ms":`...)
		b = jsonenc.AppendFloat(b, r.DurationMS)
	}
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	b = jsonenc.AppendStringField(b, "error", r.Error)
	b = jsonenc.AppendStringField(b, "capability", r.Capability)
	b = jsonenc.AppendStringField(b, "resource", r.Resource)
	b = jsonenc.AppendStringField(b, "reason", r.Reason)
	b = jsonenc.AppendStringField(b, "trace_id", r.TraceID)
	b = jsonenc.AppendStringField(b, "span_id", r.SpanID)
	b = jsonenc.AppendStringField(b, "parent_id", r.ParentID)
	if r.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(r.Attempt), 10)
	}
	return append(b, '}')
}

// Write queues a record; it never blocks. The record is copied, so the
// caller's may live on its stack.
func (l *Log) Write(r *Record) {
	if len(r.Msg) > maxMsg {
		r.Msg = r.Msg[:maxMsg]
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	select {
	case l.queue <- *r:
	default:
		l.dropped.Add(1)
		l.drops.add(r.App, r.Function)
	}
}

// Dropped is how many records were dropped because the queue was full,
// since the log opened; each function's log gets a marker record saying
// how many of its own were.
func (l *Log) Dropped() int64 { return l.dropped.Load() }

// FunctionLog records a line a guest logged or printed.
func (l *Log) FunctionLog(_ context.Context, c *sandbox.Caller, level slog.Level, msg string) {
	l.Write(&Record{Level: levelName(level), Msg: msg, App: c.App, Function: c.Function, Version: c.Version, RequestID: c.RequestID,
		TraceID: c.Trace.TraceID, SpanID: c.Trace.SpanID})
}

// maxResource bounds the resource a denial record names: a name the guest
// chose, which the host may refuse before checking its length.
const maxResource = 256

// FunctionDenied records a host call the function was refused, with the
// names of what it asked for and why, so the developer finds it in the
// function's log next to the invocation. The value it wanted to write, or
// anything else it sent, is not the host's to pass here.
func (l *Log) FunctionDenied(_ context.Context, c *sandbox.Caller, capability, resource, reason string) {
	if len(resource) > maxResource {
		resource = resource[:maxResource]
	}
	l.Write(&Record{Level: "warn", Msg: "capability denied", App: c.App, Function: c.Function, Version: c.Version,
		RequestID: c.RequestID, Capability: capability, Resource: resource, Reason: reason,
		TraceID: c.Trace.TraceID, SpanID: c.Trace.SpanID})
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	default:
		return "debug"
	}
}

// Query selects records.
type Query struct {
	App, Function string
	// Trace keeps the records of one trace (32 hex characters): its
	// invocations and every line they logged, across apps and functions.
	// The subject index narrows the read to the trace's bucket (1/256 of
	// the log), Limit counts the records of that bucket read, and the
	// trace's own are kept.
	Trace string
	// Since drops records older than this time (zero: no bound).
	Since  time.Time
	Limit  int  // last N records (default 100, at most 10,000)
	Follow bool // keep delivering new records until ctx ends
}

// ErrBadTraceID is returned for a Query.Trace that is not a trace id.
var ErrBadTraceID = fmt.Errorf("%w: a trace id is 32 lower-case hex characters", aegis.ErrInvalidArgument)

// Read calls fn for the last Limit matching records and, with Follow, for
// every new one until ctx ends.
func (l *Log) Read(ctx context.Context, q Query, fn func(*Record) error) error {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > 10000 {
		q.Limit = 10000
	}
	filter, err := q.filter()
	if err != nil {
		return err
	}
	if !q.Follow {
		// The tail, not the start: a busy function writes thousands of
		// records, and the newest are the ones asked for.
		msgs, err := l.node.StreamTail(ctx, Stream, filter, q.Limit)
		if err != nil {
			return fmt.Errorf("read function log: %w", err)
		}
		for _, m := range msgs {
			if err := emit(m.Data, q, fn); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ferr error
	err = l.node.Follow(ctx, Stream, filter, q.Limit, func(m *jetstream.Message) {
		if ferr != nil {
			return
		}
		if err := emit(m.Data, q, fn); err != nil {
			ferr = err
			cancel()
		}
	})
	if ferr != nil {
		return ferr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("follow function log: %w", err)
	}
	return nil
}

// filter is the subject filter of q: app, function and the trace's
// bucket are subject tokens, so the stream's subject index does most of
// the selecting.
func (q Query) filter() (string, error) {
	app, function, trace := q.App, q.Function, "*"
	if q.Trace != "" {
		if !telemetry.IsID(q.Trace) {
			return "", ErrBadTraceID
		}
		trace = traceBucket(q.Trace)
	}
	if app == "" {
		app = "*"
	}
	if function == "" {
		function = "*"
	}
	if app == "*" && function == "*" && trace == "*" {
		return subjectPrefix + ">", nil
	}
	return subjectPrefix + app + "." + function + "." + trace, nil
}

func emit(data []byte, q Query, fn func(*Record) error) error {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil // a record we cannot read is skipped, not fatal to the reader
	}
	if q.Function != "" && r.Function != q.Function {
		return nil
	}
	if q.Trace != "" && r.TraceID != q.Trace {
		return nil
	}
	if !q.Since.IsZero() && r.Time.Before(q.Since) {
		return nil
	}
	return fn(&r)
}

// Close flushes queued records and stops the writer. Safe twice.
func (l *Log) Close() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
	})
}
