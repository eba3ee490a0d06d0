// Package bus carries events between functions: it publishes what functions
// emit (topics and object changes) onto JetStream, runs one durable consumer
// per (function, trigger), retries failed invocations with exponential
// backoff and jitter, and moves events that keep failing to the dead-letter
// stream with their last error. Every event carries the request id of the
// request that started its chain, its producer and hop count, signed with
// the event signing key; a trigger invokes nothing with an event that does
// not verify, whose producer lacks the grant to publish it, or that is
// beyond the hop limit. The package never logs the key.
package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/usage"
	"github.com/aegis-platform/aegis/manifest"
)

// Streams and subjects.
const (
	EventStream = "AEGIS_EVENTS"
	DLQStream   = "AEGIS_DLQ"

	eventPrefix  = "aegis.ev."  // aegis.ev.<app>.<topic>
	objectPrefix = "aegis.obj." // aegis.obj.<app>
	dlqPrefix    = "aegis.dlq." // aegis.dlq.<app>.<function>
)

// Message headers.
const (
	HeaderRequestID = "Aegis-Request-Id"
	HeaderProducer  = "Aegis-Producer"
	HeaderError     = "Aegis-Error"
	HeaderAttempts  = "Aegis-Attempts"
	HeaderSubject   = "Aegis-Subject"
	HeaderTopic     = "Aegis-Topic"
	HeaderFunction  = "Aegis-Function"
)

// Config wires a Bus.
type Config struct {
	Node       *jetstream.Node
	Dispatcher *dispatch.Dispatcher
	Logger     *slog.Logger
	// RetryBase is the first retry delay; each further attempt doubles it
	// (with ±50% jitter) up to RetryMax. Defaults 1s and 1m.
	RetryBase, RetryMax time.Duration
	// SigningKey signs every event published and verifies every event
	// delivered; at least KeySize bytes, required. Servers sharing a NATS
	// must share the key.
	SigningKey []byte
	// HopLimit is the highest hop delivered to a function (default
	// DefaultHopLimit); events beyond it are dead-lettered.
	HopLimit int
	// Metrics counts events refused by a trigger's schema; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// Seen keeps the triggers' replay records (replay.go); nil opens the
	// bucket aegis_events_seen on Node.
	Seen SeenStore
	// Holds counts how often each event waited for a spent budget
	// (hold.go); nil opens the bucket aegis_event_holds on Node.
	Holds HoldStore
	// Limits bound the event stream and each app's part of it
	// (backlog.go); zero fields take the defaults.
	Limits Limits
	// Spans receives a consumer span per delivery of an event to a
	// trigger (spans.go); nil records none.
	Spans telemetry.SpanSink
	// Data seals every event payload with the publishing app's data key
	// before it is stored, and opens it for delivery (sealed.go): the
	// server's vault. Nil stores payloads as they are (the bus's own unit
	// tests).
	Data DataSealer
	// Guard is told of schema violations, hop-limit stops and dead
	// letters; nil tells nobody. An event of a function the guard
	// quarantined or throttled waits like one a spent budget holds.
	Guard *guard.Guard
}

// Bus publishes events and runs triggers.
type Bus struct {
	cfg  Config
	log  *slog.Logger
	snap func() *registry.Snapshot
	seen SeenStore

	holdStore HoldStore
	backlog   backlog // backlog.go

	mu   sync.Mutex
	subs map[string]*trigger // by durable name
}

type trigger struct {
	sub         *jetstream.Subscription
	fingerprint string
	app         string
	function    string
	name        string // the trigger as the manifest declares it (registry.EventTriggerKey, ObjectTriggerKey)
}

// objectEvent is the payload of an object-change event.
type objectEvent struct {
	Key       string `json:"key"`
	Operation string `json:"operation"`
}

// decodeObjectEvent reads an object event document by its exact member
// names. A struct would match "Key" as well as "key", so a document with
// both could show a schema one key and the function another.
func decodeObjectEvent(data []byte) (objectEvent, bool) {
	var doc map[string]string
	if err := json.Unmarshal(data, &doc); err != nil || len(doc) != 2 {
		return objectEvent{}, false
	}
	key, ok1 := doc["key"]
	op, ok2 := doc["operation"]
	return objectEvent{Key: key, Operation: op}, ok1 && ok2
}

// Open ensures the streams exist. snapshot returns the active apps.
func Open(ctx context.Context, cfg Config, snapshot func() *registry.Snapshot) (*Bus, error) {
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HopLimit <= 0 {
		cfg.HopLimit = DefaultHopLimit
	}
	if len(cfg.SigningKey) < KeySize {
		return nil, fmt.Errorf("open bus: %w: event signing key of %d bytes, need %d", aegis.ErrInvalidArgument, len(cfg.SigningKey), KeySize)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if err := cfg.Node.EnsureStream(ctx, jetstream.StreamConfig{
		Name: EventStream, Subjects: []string{eventPrefix + ">", objectPrefix + ">"},
		MaxAge: cfg.Limits.StreamAge, MaxBytes: cfg.Limits.StreamBytes, Duplicates: DedupeWindow,
		DiscardNew: true, AllowMsgTTL: true,
	}); err != nil {
		return nil, fmt.Errorf("open bus: %w", err)
	}
	if err := cfg.Node.EnsureStream(ctx, jetstream.StreamConfig{
		Name: DLQStream, Subjects: []string{dlqPrefix + ">"}, MaxAge: 30 * 24 * time.Hour,
	}); err != nil {
		return nil, fmt.Errorf("open bus: %w", err)
	}
	seen := cfg.Seen
	if seen == nil {
		bucket, err := openSeen(ctx, cfg.Node, cfg.RetryMax)
		if err != nil {
			return nil, fmt.Errorf("open bus: %w", err)
		}
		seen = bucket
	}
	holds := cfg.Holds
	if holds == nil {
		bucket, err := openHolds(ctx, cfg.Node)
		if err != nil {
			return nil, fmt.Errorf("open bus: %w", err)
		}
		holds = bucket
	}
	return &Bus{cfg: cfg, log: cfg.Logger, snap: snapshot, seen: seen, holdStore: holds, subs: map[string]*trigger{}}, nil
}

// Publish implements capability.Events: grants were checked by the caller.
func (b *Bus) Publish(ctx context.Context, c *sandbox.Caller, topic string, data []byte) error {
	if err := b.admitEvent(ctx, c.App, c.Function, c.RequestID); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	subject := eventPrefix + c.App + "." + topic
	sealed, err := b.seal(ctx, c.App, subject, data)
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if err := b.publish(ctx, subject, sealed, b.envelope(c)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// publish signs an event and stores it under its id, so JetStream keeps
// one copy of it within the de-duplication window.
func (b *Bus) publish(ctx context.Context, subject string, data []byte, env Envelope) error {
	return b.publishBounded(ctx, subject, data, env)
}

// ObjectChanged announces a put or delete of an object to object triggers.
// The app's event backlog is checked before the object is written
// (AdmitObjectChange), so a refusal never leaves a change unannounced.
func (b *Bus) ObjectChanged(ctx context.Context, c *sandbox.Caller, key, op string) error {
	// Not sealed: it holds an object's name and an operation, and names
	// are in the clear in the object store too (docs/vault.md).
	data, _ := json.Marshal(objectEvent{Key: key, Operation: op})
	if err := b.publish(ctx, objectPrefix+c.App, data, b.envelope(c)); err != nil {
		return fmt.Errorf("announce object %s: %w", op, err)
	}
	return nil
}

// envelope is what an event published by c carries: a new id, one hop
// more than the event c is handling, 1 outside event handlers.
func (b *Bus) envelope(c *sandbox.Caller) Envelope {
	env := NewEnvelope(c.App+"/"+c.Function+"@"+c.Version, c.RequestID, max(c.Hop, 0)+1)
	env.Origin, env.Path = c.Origin, sandbox.Extend(c.Chain, c.Function)
	env.Trace = telemetry.Span{TraceID: c.Trace.TraceID, SpanID: c.Trace.SpanID}
	return env
}

// desired is one consumer the active snapshot needs.
type desired struct {
	durable, filter, app, function string
	maxAttempts                    int
	// concurrency caps unacknowledged events at what the function can run
	// at once, so the server never hands over events that would only wait
	// for an instance (and could time out waiting, costing an attempt).
	concurrency int
	ackWait     time.Duration
	object      *objectFilter
	// trigger finds the trigger's schema in registry.Function.Schemas and
	// labels its violations.
	trigger string
}

type objectFilter struct {
	prefix string
	ops    map[string]bool
}

// Sync starts the consumers the snapshot needs and stops those it no longer
// does. Durable names depend only on (app, function, trigger), so a new
// version of an app keeps its consumers' positions.
func (b *Bus) Sync(ctx context.Context, snap *registry.Snapshot) error {
	want := map[string]desired{}
	for _, appName := range snap.AppNames() {
		app := snap.Apps[appName]
		for _, fnName := range app.Manifest.FunctionNames() {
			spec := app.Manifest.Functions[fnName]
			ackWait := spec.Limits.Timeout.Std() + ackMargin
			for _, t := range spec.Triggers {
				switch {
				case t.Event != nil:
					d := desired{
						durable: durableName("ev", appName, fnName, t.Event.Topic),
						filter:  eventPrefix + appName + "." + t.Event.Topic,
						trigger: registry.EventTriggerKey(t.Event),
						app:     appName, function: fnName, maxAttempts: t.Event.MaxAttempts, ackWait: ackWait,
						concurrency: spec.Limits.Concurrency,
					}
					want[d.durable] = d
				case t.Object != nil:
					ops := map[string]bool{}
					for _, op := range t.Object.Operations {
						ops[op] = true
					}
					d := desired{
						durable: durableName("ob", appName, fnName, t.Object.Prefix+"|"+strings.Join(t.Object.Operations, ",")),
						filter:  objectPrefix + appName,
						app:     appName, function: fnName, maxAttempts: manifestDefaultAttempts, ackWait: ackWait,
						concurrency: spec.Limits.Concurrency,
						object:      &objectFilter{prefix: t.Object.Prefix, ops: ops},
						trigger:     registry.ObjectTriggerKey(t.Object),
					}
					want[d.durable] = d
				}
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for name, tr := range b.subs {
		if d, ok := want[name]; ok && fingerprint(d) == tr.fingerprint {
			continue
		}
		tr.sub.Stop()
		delete(b.subs, name)
		if _, still := want[name]; !still {
			if err := b.cfg.Node.DeleteConsumer(ctx, EventStream, name); err != nil && !errors.Is(err, aegis.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range sortedNames(want) {
		if _, ok := b.subs[name]; ok {
			continue
		}
		d := want[name]
		if d.maxAttempts <= 0 {
			d.maxAttempts = manifestDefaultAttempts
		}
		if d.concurrency <= 0 {
			d.concurrency = 10
		}
		sub, err := b.cfg.Node.Consume(context.Background(), jetstream.ConsumerConfig{
			Stream: EventStream, Durable: d.durable, FilterSubject: d.filter,
			// MaxDeliver is unlimited: deliveries that waited for a budget
			// are not attempts (hold.go), and handle dead-letters an event
			// whose attempts are used up, so the server never drops one.
			AckWait: d.ackWait, MaxAckPending: d.concurrency, DeliverNew: true,
		}, b.handler(d))
		if err != nil {
			errs = append(errs, fmt.Errorf("start trigger %s: %w", d.durable, err))
			continue
		}
		b.subs[name] = &trigger{sub: sub, fingerprint: fingerprint(d), app: d.app, function: d.function, name: d.trigger}
	}
	return errors.Join(errs...)
}

const manifestDefaultAttempts = 3

// ackMargin is how much longer than the function's timeout a consumer waits
// for an event's acknowledgement before delivering it again.
const ackMargin = 30 * time.Second

func (b *Bus) handler(d desired) func(context.Context, *jetstream.Message) {
	return func(ctx context.Context, m *jetstream.Message) {
		b.handle(ctx, d, m)
	}
}

func (b *Bus) handle(ctx context.Context, d desired, m *jetstream.Message) {
	if m.NumDelivered > 1 {
		b.cfg.Metrics.EventRedelivered(d.app, d.function, d.trigger)
	}
	env, err := Verify(b.cfg.SigningKey, m.Subject, m.Headers, m.Data)
	if err == nil && env.ID == "" {
		err = errNoID // version 1: dead-lettered, so `aegis dlq replay` can re-sign it
	}
	if err != nil {
		b.reject(ctx, d, m, err, metrics.DeadLetterSignature)
		return
	}
	if err := checkFresh(env, m); err != nil {
		b.refuseCopy(ctx, d, m, env, err)
		return
	}
	reqID := env.RequestID
	if !telemetry.ValidRequestID(reqID) {
		reqID = telemetry.NewRequestID()
	}
	req := &sandbox.Request{Kind: sandbox.KindEvent, RequestID: reqID, Attempt: int(m.NumDelivered), Hop: env.Hop,
		Origin: env.Origin, Chain: env.Path, Trace: eventTrace(env, reqID)}
	if req.Origin == "" {
		// Published before events carried their origin (signature v2).
		req.Origin = sandbox.OriginPublic
	}
	if d.object != nil {
		oe, ok := decodeObjectEvent(m.Data)
		if !ok || !strings.HasPrefix(oe.Key, d.object.prefix) ||
			(len(d.object.ops) > 0 && !d.object.ops[oe.Operation]) {
			_ = m.Ack(ctx) // not for this trigger
			return
		}
		req.Kind, req.Key, req.Operation, req.Body = sandbox.KindObject, oe.Key, oe.Operation, nil
		req.Trigger = d.object.prefix // the call graph's edge: prefix → function
	} else {
		req.Topic = strings.TrimPrefix(m.Subject, eventPrefix+d.app+".")
		req.Trigger = req.Topic // the call graph's edge: topic → function
	}
	if err := b.firstDelivery(ctx, d, m, env); err != nil {
		if errors.Is(err, errReplayed) {
			b.refuseCopy(ctx, d, m, env, err)
			return
		}
		b.log.Error("replay record unavailable; event will be redelivered", logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function, logkey.Error, err)
		_ = m.Nak(ctx, b.cfg.RetryBase)
		return
	}
	// Deliveries that waited for a budget are not attempts.
	held := b.holds(ctx, d, m)
	attempt := int(m.NumDelivered) - held
	req.Attempt = attempt
	if attempt > d.maxAttempts+1 {
		// Delivered more often than its attempts allow without ever failing
		// here: each time, the server lost it before an ack (a crash, an
		// ack timeout). The consumer used to stop at this count; now this
		// check does, and the event is kept as a dead letter.
		b.deadLetter(ctx, d, m, reqID, attempt-1, errNoAttemptFinished, metrics.DeadLetterLost)
		return
	}
	if env.ReplayedBy != "" && m.NumDelivered == 1 {
		b.log.Info("replayed event delivered", logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function,
			logkey.EventID, env.ID, logkey.ReplayedBy, env.ReplayedBy)
	}
	snap := b.snap()
	fn, ok := snap.Function(d.app, d.function)
	if !ok {
		_ = m.Nak(ctx, b.cfg.RetryBase) // trigger is being removed; leave the event for its next owner
		return
	}
	if err := producerGranted(snap, d.app, env.Producer, req); err != nil {
		b.reject(ctx, d, m, err, metrics.DeadLetterProducer)
		return
	}
	if env.Hop > b.cfg.HopLimit {
		b.stopLoop(ctx, d, m, reqID, env)
		return
	}
	// The payload in the clear exists only here, in memory: m.Data stays
	// sealed, and so does every copy of it (a dead letter, a replay).
	payload := m.Data
	if d.object == nil {
		if payload, err = b.open(ctx, d.app, m); err != nil {
			if errors.Is(err, errSealed) {
				b.reject(ctx, d, m, err, metrics.DeadLetterSignature)
				return
			}
			b.log.Error("event payload could not be opened; event will be redelivered", logkey.RequestID, reqID, logkey.App, d.app,
				logkey.Function, d.function, logkey.Error, err)
			_ = m.Nak(ctx, b.cfg.RetryBase)
			return
		}
		req.Body = payload
	}
	// Only an authentic event is checked against the schema: a forged one
	// is rejected as forged above, whatever it contains.
	if !b.checkSchema(ctx, d, m, payload, fn) {
		return
	}
	_, err = b.invoke(ctx, d, fn, req, publisherOf(req)) // spans.go
	if err == nil {
		if aerr := m.Ack(ctx); aerr != nil {
			b.log.Warn("event ack failed", logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function, logkey.Error, aerr)
		}
		return
	}
	if errors.Is(err, usage.ErrBudgetExhausted) || errors.Is(err, guard.ErrQuarantined) || errors.Is(err, guard.ErrThrottled) {
		b.hold(ctx, d, m, reqID, held, err)
		return
	}
	if attempt < d.maxAttempts && !errors.Is(err, dispatch.ErrDraining) {
		delay := b.backoff(attempt)
		b.log.Info("event retry scheduled", logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function,
			logkey.Attempt, attempt, logkey.Delay, delay.String())
		_ = m.Nak(ctx, delay)
		return
	}
	if errors.Is(err, dispatch.ErrDraining) {
		_ = m.Nak(ctx, b.cfg.RetryBase)
		return
	}
	b.deadLetter(ctx, d, m, reqID, attempt, err, metrics.DeadLetterAttempts)
}

// producerGranted checks that the producer of a verified event is a
// function of the trigger's app in the active snapshot, and that its grants
// allow what the event announces: a publish grant covering the topic, or an
// object write grant covering the key. The producer's version is not
// checked against the active one, so events in flight across a deploy, and
// dead letters replayed later, still arrive; the grant that counts is the
// active manifest's, so revoking it stops them.
func producerGranted(snap *registry.Snapshot, app, producer string, req *sandbox.Request) error {
	pApp, pFn, _, ok := parseProducer(producer)
	if !ok || pApp != app {
		return errUnknownProducer
	}
	a, ok := snap.Apps[app]
	if !ok {
		return errUnknownProducer
	}
	spec := a.Manifest.Functions[pFn]
	if spec == nil {
		return errUnknownProducer
	}
	if req.Kind == sandbox.KindObject {
		if !matchAny(req.Key, spec.Grants.Objects.Write) {
			return errKeyNotGranted
		}
		return nil
	}
	if !matchAny(req.Topic, spec.Grants.Events.Publish) {
		return errTopicNotGranted
	}
	return nil
}

// matchAny applies the grant pattern rule that the producer's host calls
// were checked with (manifest.MatchPattern), so a trigger accepts exactly
// what the grant let the producer send.
func matchAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if manifest.MatchPattern(p, name) {
			return true
		}
	}
	return false
}

// reject dead-letters an event that must not reach the function, at once
// and without retries, and records it as a security event. The request id
// is logged only when it is well formed: a forged one is attacker input.
func (b *Bus) reject(ctx context.Context, d desired, m *jetstream.Message, reason error, metricReason string) {
	reqID := m.Headers[HeaderRequestID]
	if !telemetry.ValidRequestID(reqID) {
		reqID = ""
	}
	b.log.LogAttrs(ctx, slog.LevelWarn, "event rejected", securityAttrs(d, m, reqID, reason)...)
	b.deadLetter(ctx, d, m, reqID, int(m.NumDelivered), reason, metricReason)
}

// securityAttrs are the attributes of a trigger's security log lines: why,
// where, and the request id when it is well formed (reqID "" otherwise).
func securityAttrs(d desired, m *jetstream.Message, reqID string, reason error) []slog.Attr {
	attrs := []slog.Attr{
		slog.Bool(logkey.Security, true),
		slog.String(logkey.Reason, reason.Error()),
		slog.String(logkey.App, d.app),
		slog.String(logkey.Function, d.function),
		slog.String(logkey.Subject, m.Subject),
	}
	if reqID != "" {
		attrs = append(attrs, slog.String(logkey.RequestID, reqID))
	}
	return attrs
}

// backoff returns the delay before the next attempt: base·2^(attempt-1),
// capped, with ±50% jitter so a burst of failures does not retry in lockstep.
func (b *Bus) backoff(attempt int) time.Duration {
	d := b.cfg.RetryBase << min(attempt-1, 20)
	if d > b.cfg.RetryMax || d <= 0 {
		d = b.cfg.RetryMax
	}
	return d/2 + rand.N(d)
}

// deadLetter moves m to the dead-letter stream; reason is the label of
// aegis_dead_letters_total (metrics.DeadLetter...).
func (b *Bus) deadLetter(ctx context.Context, d desired, m *jetstream.Message, reqID string, attempts int, cause error, reason string) {
	msg := cause.Error()
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	// The dead letter, which the developer lists, shows the function's own
	// error message when it gave one; the server's log line keeps the
	// platform's words, as it never carries what the function wrote.
	shown := msg
	if fm := sandbox.FunctionMessage(cause); fm != "" {
		shown = dispatch.FunctionFailed + ": " + fm
	}
	hdr := map[string]string{
		HeaderRequestID: reqID,
		HeaderError:     shown,
		HeaderAttempts:  strconv.Itoa(attempts),
		HeaderSubject:   m.Subject,
		HeaderFunction:  d.function,
		HeaderTopic:     strings.TrimPrefix(m.Subject, eventPrefix+d.app+"."),
	}
	// The envelope travels unchanged, so a replay can check it was genuine.
	for _, h := range envelopeHeaders {
		if v := m.Headers[h]; v != "" {
			hdr[h] = v
		}
	}
	// The message id makes a redelivery of the same failing event land once.
	msgID := "dlq-" + d.durable + "-" + strconv.FormatUint(m.Seq, 10)
	if _, err := b.cfg.Node.Publish(ctx, dlqPrefix+d.app+"."+d.function, m.Data, hdr, msgID); err != nil {
		b.log.Error("dead-letter failed; event will be redelivered", logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function, logkey.Error, err)
		_ = m.Nak(ctx, b.cfg.RetryMax)
		return
	}
	b.log.Warn("event dead-lettered", logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function,
		logkey.Attempts, attempts, logkey.Error, msg)
	b.cfg.Metrics.DeadLetter(d.app, d.function, reason)
	b.cfg.Guard.Observe(guard.Event{Signal: guard.DeadLetter, App: d.app, Function: d.function})
	_ = m.Term(ctx)
}

// DeadLetter is one event in the dead-letter stream, in the shape the
// admin API lists it (GET /v1/dlq) and the client decodes.
type DeadLetter = adminapi.DeadLetter

// DeadLetters lists dead-lettered events, oldest first; app "" lists all.
func (b *Bus) DeadLetters(ctx context.Context, app string) ([]DeadLetter, error) {
	filter := dlqPrefix + ">"
	if app != "" {
		filter = dlqPrefix + app + ".>"
	}
	msgs, err := b.cfg.Node.StreamMessages(ctx, DLQStream, filter, 10000)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, toDeadLetter(m))
	}
	return out, nil
}

func toDeadLetter(m *jetstream.Message) DeadLetter {
	rest := strings.TrimPrefix(m.Subject, dlqPrefix)
	app, _, _ := strings.Cut(rest, ".")
	n, _ := strconv.Atoi(m.Headers[HeaderAttempts])
	return DeadLetter{
		ID: m.Seq, App: app, Function: m.Headers[HeaderFunction], Topic: m.Headers[HeaderTopic],
		Error: m.Headers[HeaderError], Attempts: n, RequestID: m.Headers[HeaderRequestID], Time: m.Timestamp,
	}
}

// envelopeHeaders are the headers of the signed envelope, which a dead
// letter keeps as they came.
var envelopeHeaders = []string{HeaderProducer, HeaderHop, HeaderSignature, HeaderEventID, HeaderEventTime, HeaderReplayedBy,
	HeaderOrigin, HeaderPath, HeaderTraceparent}

// eventTrace is the span of the invocation an event causes: a child of
// the span that published it, in the same trace. An event signed before
// envelopes carried a trace context starts one, under its request id
// when that has a trace id's shape.
func eventTrace(env Envelope, reqID string) telemetry.Span {
	if !telemetry.Tracing {
		return telemetry.Span{}
	}
	if env.Trace.TraceID != "" {
		return telemetry.Span{TraceID: env.Trace.TraceID, ParentID: env.Trace.SpanID}
	}
	if telemetry.IsID(reqID) {
		return telemetry.Span{TraceID: reqID}
	}
	return telemetry.Span{TraceID: telemetry.NewID()}
}

// Replay publishes a dead-lettered event again on its original subject,
// then removes it from the dead-letter stream. The dead letter's envelope
// must verify: only a genuine event is replayed. It is re-signed with the
// original producer, request id and hop, a new id (the dead letter's own,
// see replayID) and the current time, and names by, the admin replaying
// it; triggers see a new event, which the replay records of the first
// delivery do not stop.
func (b *Bus) Replay(ctx context.Context, id uint64, by string) (*DeadLetter, error) {
	m, err := b.cfg.Node.StreamMessage(ctx, DLQStream, id)
	if err != nil {
		return nil, fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	subject := m.Headers[HeaderSubject]
	if !strings.HasPrefix(subject, eventPrefix) && !strings.HasPrefix(subject, objectPrefix) {
		return nil, fmt.Errorf("replay dead letter %d: %w: no original subject", id, aegis.ErrInvalidArgument)
	}
	hdr := map[string]string{HeaderRequestID: m.Headers[HeaderRequestID]}
	for _, h := range envelopeHeaders {
		if v := m.Headers[h]; v != "" {
			hdr[h] = v
		}
	}
	orig, err := Verify(b.cfg.SigningKey, subject, hdr, m.Data)
	if err != nil {
		return nil, fmt.Errorf("replay dead letter %d: %w (%v)", id, ErrForgedDeadLetter, err)
	}
	env := Envelope{Producer: orig.Producer, RequestID: orig.RequestID, Hop: orig.Hop,
		ID: replayID(id, orig), Time: time.UnixMilli(time.Now().UnixMilli()), ReplayedBy: by,
		Origin: orig.Origin, Path: orig.Path, Trace: orig.Trace}
	if err := b.publish(ctx, subject, m.Data, env); err != nil {
		return nil, fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	if err := b.cfg.Node.DeleteStreamMessage(ctx, DLQStream, id); err != nil {
		return nil, fmt.Errorf("replay dead letter %d: remove: %w", id, err)
	}
	dl := toDeadLetter(m)
	b.log.Info("dead letter replayed", logkey.RequestID, dl.RequestID, logkey.App, dl.App, logkey.Function, dl.Function,
		logkey.DeadLetter, id, logkey.EventID, env.ID, logkey.ReplacedEventID, orig.ID, logkey.ReplayedBy, by)
	return &dl, nil
}

// PendingEvents calls fn for every trigger this server runs, in the order
// of their consumers' names, with the events stored for it that its
// consumer has not delivered yet. A consumer the server cannot read within
// ctx is left out. The metrics package reads it at scrape time.
func (b *Bus) PendingEvents(ctx context.Context, fn func(app, function, trigger string, pending uint64)) {
	b.mu.Lock()
	names := make([]string, 0, len(b.subs))
	trs := make(map[string]*trigger, len(b.subs))
	for name, tr := range b.subs {
		names = append(names, name)
		trs[name] = tr
	}
	b.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		tr := trs[name]
		n, err := tr.sub.Pending(ctx)
		if err != nil {
			continue
		}
		fn(tr.app, tr.function, tr.name, n)
	}
}

// Close stops every trigger, waiting for in-flight handlers.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, tr := range b.subs {
		tr.sub.Stop()
		delete(b.subs, name)
	}
}

// durableName is stable for (kind, app, function, trigger) and uses only
// characters JetStream allows in consumer names.
func durableName(kind, app, fn, key string) string {
	h := sha256.Sum256([]byte(key))
	return kind + "_" + app + "_" + fn + "_" + hex.EncodeToString(h[:6])
}

func fingerprint(d desired) string {
	s := fmt.Sprintf("%s|%d|%s|%d", d.filter, d.maxAttempts, d.ackWait, d.concurrency)
	if d.object != nil {
		s += "|" + d.object.prefix
	}
	return s
}

func sortedNames(m map[string]desired) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
