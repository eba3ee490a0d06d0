// Package otlp is the only package importing the OpenTelemetry SDK. It
// sends the platform's finished spans (telemetry.SpanRecord: the gateway's
// requests, invocations, host calls, event deliveries) to an OTLP/HTTP
// collector, with exactly the trace and span ids the platform gave them, so
// the trace id a collector shows is the one `aegis trace` and the logs use.
//
// Export is off unless an endpoint is configured. When it is on it never
// slows the caller: ExportSpan puts the record on a bounded queue and
// returns; when the queue is full (a slow or unreachable collector) the
// span is dropped and counted (Dropped), never waited for.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultServiceName  = "aegis"
	DefaultQueueSize    = 4096
	DefaultBatchTimeout = 2 * time.Second
	DefaultTimeout      = 10 * time.Second
	// TracesPath is what the OTLP/HTTP specification appends to a base
	// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) to reach the traces service.
	TracesPath = "/v1/traces"
)

// Config says where spans go. The zero Config (no Endpoint) exports
// nothing.
type Config struct {
	// Endpoint is the full URL spans are POSTed to, path included
	// ("http://collector:4318/v1/traces"); TracesURL turns a base endpoint
	// into it. Its scheme must be http or https: plain HTTP is used only
	// when the URL says http. Empty turns export off.
	Endpoint string
	// Headers are sent with every export (an authorization token, for
	// instance). They are never logged.
	Headers map[string]string
	// ServiceName and ServiceVersion are the resource's service.name
	// (default "aegis") and service.version (omitted when empty).
	ServiceName    string
	ServiceVersion string
	// Logger receives export failures and drop counts (at most one line a
	// minute each); nil discards them.
	Logger *slog.Logger

	// QueueSize is how many finished spans may wait for the exporter
	// before ExportSpan drops (default DefaultQueueSize).
	QueueSize int
	// BatchTimeout is the longest a span waits to be sent with others
	// (default DefaultBatchTimeout).
	BatchTimeout time.Duration
	// Timeout bounds one export request (default DefaultTimeout).
	Timeout time.Duration
	// Gzip compresses export requests (OTEL_EXPORTER_OTLP_COMPRESSION
	// =gzip). Off by default, as the specification has it: compressing
	// cost about a quarter of the exporter's CPU (bench scenario 12), worth
	// it only when the collector is across a slow link.
	Gzip bool
	// SampleRatio is the share of traces exported, 0 < ratio ≤ 1 (0: all).
	// The decision is the trace id's, the same on every server and for
	// every span of a trace, so a trace is exported whole or not at all.
	// `aegis trace` keeps every trace whatever the ratio.
	SampleRatio float64
}

// ConfigFromEnv reads the OpenTelemetry environment variables through
// getenv (os.Getenv): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as it is,
// else OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended to its path;
// OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS
// ("k=v,k2=v2", values percent-decoded); OTEL_SERVICE_NAME. OTEL_SDK_DISABLED
// =true turns export off. Nothing set gives a Config with export off.
func ConfigFromEnv(getenv func(string) string) Config {
	var c Config
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return c
	}
	if u := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); u != "" {
		c.Endpoint = u
	} else if u := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); u != "" {
		c.Endpoint = TracesURL(u)
	}
	h := getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
	if strings.TrimSpace(h) == "" {
		h = getenv("OTEL_EXPORTER_OTLP_HEADERS")
	}
	c.Headers = parseHeaders(h)
	c.ServiceName = strings.TrimSpace(getenv("OTEL_SERVICE_NAME"))
	comp := getenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
	if strings.TrimSpace(comp) == "" {
		comp = getenv("OTEL_EXPORTER_OTLP_COMPRESSION")
	}
	c.Gzip = strings.EqualFold(strings.TrimSpace(comp), "gzip")
	switch strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")) {
	case "traceidratio", "parentbased_traceidratio":
		if r, err := strconv.ParseFloat(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG")), 64); err == nil && r > 0 && r <= 1 {
			c.SampleRatio = r
		}
	}
	return c
}

// sampled reports whether the trace with id (32 hex characters) is
// exported at ratio: its last 16 hex characters, read as a number, below
// ratio × 2^64, as OpenTelemetry's trace-id-ratio sampler decides.
func sampled(id string, ratio float64) bool {
	if ratio <= 0 || ratio >= 1 {
		return true
	}
	if len(id) != 32 {
		return false
	}
	v, err := strconv.ParseUint(id[16:], 16, 64)
	if err != nil {
		return false
	}
	return float64(v>>11) < ratio*(1<<53)
}

// TracesURL turns a base OTLP/HTTP endpoint ("http://collector:4318",
// what OTEL_EXPORTER_OTLP_ENDPOINT and `aegis server --otlp-endpoint` take)
// into the traces URL by appending /v1/traces to its path, as the
// specification says. A URL whose path already ends in /v1/traces is kept
// as it is, and so is one that does not parse (New refuses it).
func TracesURL(base string) string {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return base
	}
	if strings.HasSuffix(u.Path, TracesPath) {
		return u.String()
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + TracesPath
	u.RawPath = ""
	return u.String()
}

// parseHeaders reads the W3C-baggage-like list of OTEL_EXPORTER_OTLP_HEADERS;
// a malformed member is skipped.
func parseHeaders(s string) map[string]string {
	var h map[string]string
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = dv
		} else {
			continue
		}
		if h == nil {
			h = make(map[string]string)
		}
		h[k] = v
	}
	return h
}

// RedactedEndpoint is Endpoint as it may be logged: no user information,
// query or fragment (where a token could hide).
func (c Config) RedactedEndpoint() string {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

// Exporter sends finished spans to an OTLP/HTTP collector. It implements
// telemetry.SpanSink. A nil *Exporter exports nothing and all its methods
// are no-ops, so callers hold one without checking.
type Exporter struct {
	cfg      Config
	log      *slog.Logger
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer

	// pending is where ExportSpan leaves records, under mu; run takes
	// them every feedInterval. A slice and a lock rather than a channel:
	// a channel wakes the feeding goroutine for every span, and on a
	// machine with few cores those wake-ups cost the requests more than
	// everything else export does (bench scenario 12).
	mu      sync.Mutex
	pending []*telemetry.SpanRecord
	stop    chan struct{}
	done    chan struct{}
	stopped sync.Once

	dropped atomic.Int64
}

var _ telemetry.SpanSink = (*Exporter)(nil)

// New starts an exporter for cfg. An empty cfg.Endpoint turns export off:
// New returns a nil *Exporter and a nil error. A malformed endpoint, or one
// whose scheme is neither http nor https, is an error.
func New(ctx context.Context, cfg Config) (*Exporter, error) {
	if strings.TrimSpace(cfg.Endpoint) == "" {
		return nil, nil
	}
	u, err := url.Parse(strings.TrimSpace(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("otlp endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("otlp endpoint %q: want an http:// or https:// URL", cfg.RedactedEndpoint())
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultServiceName
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []otlptracehttp.Option{
		// The scheme decides: WithEndpointURL speaks plain HTTP for http://
		// only.
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithTimeout(cfg.Timeout),
	}
	if cfg.Gzip {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("otlp sample ratio %v: want more than 0 and at most 1", cfg.SampleRatio)
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	client, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	provider := sdktrace.NewTracerProvider(
		// Every record the platform hands over is a span it decided to
		// record; the ids are its own, carried in the context.
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(contextIDs{}),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		// Blocking: the batch queue pushes back on the one goroutine that
		// feeds it, so spans are dropped (and counted) in one place only,
		// Exporter's own queue, and ExportSpan never waits.
		sdktrace.WithBatcher(client,
			sdktrace.WithMaxQueueSize(cfg.QueueSize),
			sdktrace.WithBatchTimeout(cfg.BatchTimeout),
			sdktrace.WithExportTimeout(cfg.Timeout),
			sdktrace.WithBlocking()),
	)
	errorLog.Store(log)
	installErrorHandler.Do(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(logExportError)) })
	e := &Exporter{
		cfg:      cfg,
		log:      log,
		provider: provider,
		tracer:   provider.Tracer("github.com/aegis-platform/aegis"),
		pending:  make([]*telemetry.SpanRecord, 0, 256),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go e.run()
	return e, nil
}

// ExportSpan queues r for export and returns at once; when the queue is
// full r is dropped and counted. The exporter keeps r: the caller must not
// change it afterwards. A record without a valid trace and span id is
// ignored.
func (e *Exporter) ExportSpan(r *telemetry.SpanRecord) {
	if e == nil || r == nil || !sampled(r.TraceID, e.cfg.SampleRatio) {
		return
	}
	e.mu.Lock()
	if len(e.pending) >= e.cfg.QueueSize {
		e.mu.Unlock()
		e.dropped.Add(1)
		return
	}
	e.pending = append(e.pending, r)
	e.mu.Unlock()
}

// feedInterval is how often the exporter hands what was queued to the
// SDK's batcher, which sends every BatchTimeout or when a batch is full.
const feedInterval = 50 * time.Millisecond

// take returns the queued records and leaves an empty queue, reusing
// spare, the slice the previous take returned.
func (e *Exporter) take(spare []*telemetry.SpanRecord) []*telemetry.SpanRecord {
	e.mu.Lock()
	got := e.pending
	e.pending = spare[:0]
	e.mu.Unlock()
	return got
}

// Dropped is how many spans ExportSpan dropped because the queue was full.
func (e *Exporter) Dropped() int64 {
	if e == nil {
		return 0
	}
	return e.dropped.Load()
}

// Shutdown stops taking spans, sends those queued (as far as ctx allows)
// and closes the connection to the collector. Later calls return nil.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if e == nil {
		return nil
	}
	var err error
	e.stopped.Do(func() {
		close(e.stop)
		select {
		case <-e.done:
		case <-ctx.Done():
		}
		// Flushes the batch queue; its end also releases the feeding
		// goroutine if it was still waiting for room.
		err = e.provider.Shutdown(ctx)
		if err != nil {
			err = fmt.Errorf("otlp shutdown: %w", err)
		}
		if n := e.dropped.Load(); n > 0 {
			e.log.Warn("spans dropped by the OTLP exporter", logkey.Dropped, n, logkey.URL, e.cfg.RedactedEndpoint())
		}
	})
	return err
}

// dropReport is how often at most the exporter logs that it dropped spans.
const dropReport = time.Minute

// run feeds queued records to the SDK until Shutdown, then the rest of
// the queue.
func (e *Exporter) run() {
	defer close(e.done)
	tick := time.NewTicker(dropReport)
	defer tick.Stop()
	feed := time.NewTicker(feedInterval)
	defer feed.Stop()
	var reported int64
	var spare []*telemetry.SpanRecord
	drain := func() {
		got := e.take(spare)
		for i, r := range got {
			e.record(r)
			got[i] = nil // the record is the SDK's now; do not keep it alive
		}
		spare = got
	}
	for {
		select {
		case <-feed.C:
			drain()
		case <-tick.C:
			if n := e.dropped.Load(); n > reported {
				e.log.Warn("spans dropped by the OTLP exporter: the collector is slow or unreachable",
					logkey.Dropped, n-reported, logkey.URL, e.cfg.RedactedEndpoint())
				reported = n
			}
		case <-e.stop:
			drain()
			return
		}
	}
}

// idsKey carries the ids of the span being recorded to contextIDs.
type idsKey struct{}

type spanIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// contextIDs is the SDK's IDGenerator: it hands out the ids the record
// already has, carried in the context, so the collector sees the
// platform's ids and not new ones.
type contextIDs struct{}

func (contextIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	ids, _ := ctx.Value(idsKey{}).(spanIDs)
	return ids.trace, ids.span
}

func (contextIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	ids, _ := ctx.Value(idsKey{}).(spanIDs)
	return ids.span
}

// record hands one finished span to the SDK: its ids through the context,
// its parent as a remote span context, its own start and end times.
func (e *Exporter) record(r *telemetry.SpanRecord) {
	tid, err := trace.TraceIDFromHex(r.TraceID)
	if err != nil {
		return
	}
	sid, err := trace.SpanIDFromHex(r.SpanID)
	if err != nil {
		return
	}
	ctx := context.WithValue(context.Background(), idsKey{}, spanIDs{trace: tid, span: sid})
	if r.ParentID != "" {
		if pid, err := trace.SpanIDFromHex(r.ParentID); err == nil {
			ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tid, SpanID: pid, TraceFlags: trace.FlagsSampled, Remote: true,
			}))
		}
	}
	opts := []trace.SpanStartOption{trace.WithTimestamp(r.Start), trace.WithSpanKind(kindOf(r.Kind))}
	if len(r.Attrs) > 0 {
		attrs := make([]attribute.KeyValue, 0, len(r.Attrs))
		for _, a := range r.Attrs {
			if a.IsInt {
				attrs = append(attrs, attribute.Int64(a.Key, a.Int))
			} else {
				attrs = append(attrs, attribute.String(a.Key, a.Str))
			}
		}
		opts = append(opts, trace.WithAttributes(attrs...))
	}
	_, span := e.tracer.Start(ctx, r.Name, opts...)
	if r.Error != "" {
		span.SetStatus(codes.Error, r.Error)
	}
	end := r.End
	if end.Before(r.Start) {
		end = r.Start
	}
	span.End(trace.WithTimestamp(end))
}

func kindOf(k telemetry.SpanKind) trace.SpanKind {
	switch k {
	case telemetry.KindServer:
		return trace.SpanKindServer
	case telemetry.KindClient:
		return trace.SpanKindClient
	case telemetry.KindProducer:
		return trace.SpanKindProducer
	case telemetry.KindConsumer:
		return trace.SpanKindConsumer
	default:
		return trace.SpanKindInternal
	}
}

// The SDK reports export failures through a process-wide handler; it goes
// to the logger of the latest exporter, at most once per errorEvery.
var (
	installErrorHandler sync.Once
	errorLog            atomic.Pointer[slog.Logger]
	lastErrorLog        atomic.Int64 // unix nanoseconds
)

const errorEvery = time.Minute

func logExportError(err error) {
	log := errorLog.Load()
	if log == nil || err == nil {
		return
	}
	now := time.Now().UnixNano()
	last := lastErrorLog.Load()
	if now-last < int64(errorEvery) || !lastErrorLog.CompareAndSwap(last, now) {
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	log.Warn("OTLP span export failed", logkey.Error, err)
}
