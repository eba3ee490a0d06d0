package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// An accepted asynchronous invocation is not run by the server that
// accepted it but queued: its pending record is written, then the
// invocation itself (sealed with the app's data key and signed with the
// event key) goes to a queue every server consumes, and whichever server
// takes it runs it, writes the result and only then acknowledges it. A
// server that dies mid-run never acknowledges, so the queue hands the
// invocation to a survivor. A run may thus happen twice (the result was
// written but not yet acknowledged, or a run outlived its
// acknowledgement's deadline), but a result is written once: the record
// is only ever updated at the revision its creation returned, and a
// delivery that finds it final is acknowledged without running.

// AsyncQueue holds accepted asynchronous invocations until a server runs
// them. The server's is a JetStream work-queue stream consumed through one
// durable consumer that every server shares.
type AsyncQueue interface {
	// Enqueue stores one invocation of app; a second write under the same
	// id is dropped, so a retried Enqueue is harmless.
	Enqueue(ctx context.Context, app, id string, data []byte, headers map[string]string) error
	// Consume delivers queued invocations to handle, at most handlers at
	// once on this server, until ctx ends or stop is called; stop waits
	// for the handlers running.
	Consume(ctx context.Context, handlers int, handle func(context.Context, QueuedInvocation)) (stop func(), err error)
}

// QueuedInvocation is one delivery of a queued invocation. Its handler
// Acks it (done for good), Naks it (deliver again after delay) or Terms it
// (never again); one left alone is delivered again once its
// acknowledgement deadline passes, which InProgress pushes back.
type QueuedInvocation interface {
	App() string // the app the queue's subject names
	Data() []byte
	Header(key string) string
	Attempt() int // 1 on first delivery
	Ack(ctx context.Context) error
	Nak(ctx context.Context, delay time.Duration) error
	Term(ctx context.Context) error
	InProgress(ctx context.Context) error
}

// DataSealer seals and opens an app's data with its data key, bound to
// where it is kept (vault.SealData and OpenData), as the bus seals event
// payloads.
type DataSealer interface {
	SealData(ctx context.Context, app string, where, plaintext []byte) ([]byte, error)
	OpenData(ctx context.Context, app string, where, ciphertext []byte) ([]byte, error)
}

// Headers of a queued invocation. Its id also travels as Nats-Msg-Id, the
// queue's deduplication.
const (
	HeaderInvocation = "Aegis-Invocation"
	HeaderSignature  = "Aegis-Signature"
)

// QueueAckWait is how long a delivery may go without a sign of life
// before the queue hands it to another server: a running invocation
// reports progress every queueHeartbeat, so this is about how long a
// killed server's invocations wait for a survivor.
const (
	QueueAckWait   = 15 * time.Second
	queueHeartbeat = QueueAckWait / 3
)

// QueueMaxAge is how long an invocation may wait in the queue before it is
// dropped unrun (its record then stays pending until the record's TTL): the
// longest a run may take (asyncTimeout) and as much again of backlog.
const QueueMaxAge = 2 * asyncTimeout

const (
	// maxQueueAttempts: an invocation delivered this many times without
	// a result (each server that took it died or was stopped) is failed
	// rather than run again: it may be what kills them.
	maxQueueAttempts = 5
	// absentRetry spaces deliveries of an invocation whose function this
	// server does not know (yet): a deploy reaches servers one by one.
	absentRetry    = 2 * time.Second
	absentAttempts = 3
	// storeRetry spaces deliveries after the result store failed.
	storeRetry = time.Second
	// drainRetry: a stopping server hands an invocation back for a little
	// while, so the queue offers it to another server before this one.
	drainRetry = time.Second
	// storeTimeout bounds writing a result and acknowledging it.
	storeTimeout = 10 * time.Second
)

// MaxQueuedBody bounds the body of an asynchronous invocation: the queued
// message (sealed, with the request's other fields) must fit in one NATS
// message (jetstream.MaxPayload, 1 MiB and 64 KiB) with room to spare.
const MaxQueuedBody = 1 << 20

// queuedJob is a queued invocation, sealed as a whole: headers, query,
// claims and body are all the caller's data.
type queuedJob struct {
	ID       string    `json:"id"`
	Rev      uint64    `json:"rev"` // the pending record's revision
	App      string    `json:"app"`
	Function string    `json:"function"`
	Owner    string    `json:"owner,omitempty"`
	JWT      *ownerJWT `json:"jwt,omitempty"`
	Request  queuedReq `json:"request"`
}

// queuedReq is what dispatch needs of the sandbox.Request, with the fields
// the guest never sees (json:"-" there) spelled out.
type queuedReq struct {
	Kind      string              `json:"kind"`
	RequestID string              `json:"request_id"`
	Method    string              `json:"method,omitempty"`
	Path      string              `json:"path,omitempty"`
	Params    map[string]string   `json:"params,omitempty"`
	Query     map[string][]string `json:"query,omitempty"`
	Headers   map[string][]string `json:"headers,omitempty"`
	Body      []byte              `json:"body,omitempty"`
	Identity  *queuedIdentity     `json:"identity,omitempty"`
	Origin    string              `json:"origin,omitempty"`
	Trigger   string              `json:"trigger,omitempty"`
	Trace     telemetry.Span      `json:"trace"`
}

type queuedIdentity struct {
	Scheme  string         `json:"scheme"`
	Subject string         `json:"subject,omitempty"`
	Issuer  string         `json:"issuer,omitempty"`
	Claims  map[string]any `json:"claims,omitempty"`
	KeyID   string         `json:"key_id,omitempty"`
}

func newQueuedJob(id string, rev uint64, app, function, owner string, jwt *ownerJWT, req *sandbox.Request) *queuedJob {
	j := &queuedJob{ID: id, Rev: rev, App: app, Function: function, Owner: owner, JWT: jwt, Request: queuedReq{
		Kind: req.Kind, RequestID: req.RequestID, Method: req.Method, Path: req.Path, Params: req.Params,
		Query: req.Query, Headers: req.Headers, Body: req.Body, Origin: req.Origin, Trigger: req.Trigger, Trace: req.Trace,
	}}
	if id := req.Identity; id != nil {
		j.Request.Identity = &queuedIdentity{Scheme: id.Scheme, Subject: id.Subject, Issuer: id.Issuer, Claims: id.Claims, KeyID: id.KeyID}
	}
	return j
}

func (j *queuedJob) request() *sandbox.Request {
	q := &j.Request
	req := &sandbox.Request{Kind: q.Kind, RequestID: q.RequestID, Method: q.Method, Path: q.Path, Params: q.Params,
		Query: q.Query, Headers: q.Headers, Body: q.Body, Origin: q.Origin, Trigger: q.Trigger, Trace: q.Trace}
	if id := q.Identity; id != nil {
		req.Identity = &sandbox.Identity{Scheme: id.Scheme, Subject: id.Subject, Issuer: id.Issuer, Claims: id.Claims, KeyID: id.KeyID}
	}
	return req
}

// queueAD is what a queued invocation's sealed bytes are bound to: its app
// and invocation id, so it opens as no other.
func queueAD(app, id string) []byte { return []byte("async\x00" + app + "\x00" + id) }

// signQueued is a queued invocation's signature: HMAC-SHA256 with the
// event signing key over a label, the app, the invocation id and the
// sealed bytes, each after its length as 8 bytes, big endian. Holding the
// NATS credentials is not enough to have an invocation run; one must hold
// the cluster's signing key too.
func signQueued(key []byte, app, id string, sealed []byte) string {
	m := hmac.New(sha256.New, key)
	for _, f := range [][]byte{[]byte("aegis-async-v1"), []byte(app), []byte(id), sealed} {
		m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		m.Write(f)
	}
	return "v1=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errForged: a queued invocation whose signature is missing or wrong.
var errForged = errors.New("signature mismatch")

// enqueue seals, signs and queues j.
func (g *Gateway) enqueue(ctx context.Context, j *queuedJob) error {
	plain, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("queue invocation %s: %w", j.ID, err)
	}
	sealed := plain
	if g.cfg.Data != nil {
		if sealed, err = g.cfg.Data.SealData(ctx, j.App, queueAD(j.App, j.ID), plain); err != nil {
			return fmt.Errorf("queue invocation %s: seal: %w", j.ID, err)
		}
	}
	h := map[string]string{HeaderInvocation: j.ID, HeaderSignature: signQueued(g.cfg.SigningKey, j.App, j.ID, sealed)}
	if err := g.cfg.Queue.Enqueue(ctx, j.App, j.ID, sealed, h); err != nil {
		return fmt.Errorf("queue invocation %s: %w", j.ID, err)
	}
	return nil
}

// openQueued checks a delivery's signature, then opens and decodes it.
func (g *Gateway) openQueued(ctx context.Context, d QueuedInvocation) (*queuedJob, error) {
	app, id, data := d.App(), d.Header(HeaderInvocation), d.Data()
	want := signQueued(g.cfg.SigningKey, app, id, data)
	if !hmac.Equal([]byte(d.Header(HeaderSignature)), []byte(want)) || !telemetry.IsID(id) {
		return nil, errForged
	}
	plain := data
	if g.cfg.Data != nil {
		var err error
		if plain, err = g.cfg.Data.OpenData(ctx, app, queueAD(app, id), data); err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	var j queuedJob
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if j.ID != id || j.App != app {
		return nil, fmt.Errorf("decode: names invocation %s of %s, delivered as %s of %s", j.ID, j.App, id, app)
	}
	return &j, nil
}

// Open starts taking queued asynchronous invocations: this server runs
// its share of every server's, at most MaxAsync at once. Without Async
// and Queue it does nothing. Close stops it.
func (g *Gateway) Open(ctx context.Context) error {
	if g.cfg.Async == nil || g.cfg.Queue == nil {
		return nil
	}
	if len(g.cfg.SigningKey) == 0 {
		return errors.New("open async queue: no signing key")
	}
	stop, err := g.cfg.Queue.Consume(g.bg, g.cfg.MaxAsync, g.runQueued)
	if err != nil {
		return fmt.Errorf("open async queue: %w", err)
	}
	g.stopQueue.Store(&stop)
	go g.sweepHeld()
	return nil
}

// haltQueue stops taking queued invocations and waits for the handlers
// running; safe to call twice, and before Open.
func (g *Gateway) haltQueue() {
	if stop := g.stopQueue.Load(); stop != nil {
		(*stop)()
	}
}

// runQueued runs one delivery: check, run, record, then acknowledge.
func (g *Gateway) runQueued(ctx context.Context, d QueuedInvocation) {
	j, err := g.openQueued(ctx, d)
	if err != nil {
		// Refused for good: a message that does not verify or open will
		// not on another server either.
		g.log.Warn("queued invocation refused", logkey.Security, true, logkey.App, d.App(),
			logkey.InvocationID, d.Header(HeaderInvocation), logkey.Reason, err.Error())
		g.settle(ctx, "term", d.Term(ctx))
		return
	}
	log := g.log.With(logkey.RequestID, j.Request.RequestID, logkey.InvocationID, j.ID, logkey.App, j.App, logkey.Function, j.Function)
	log.Debug("queued invocation taken", logkey.Attempt, d.Attempt())
	switch final, err := g.cfg.Async.settled(ctx, j.ID, j.Rev); {
	case errors.Is(err, errNoRecord):
		log.Warn("queued invocation dropped: its record is gone")
		g.settle(ctx, "term", d.Term(ctx))
		return
	case err != nil:
		log.Warn("queued invocation waits: result store unavailable", logkey.Error, err)
		g.settle(ctx, "nak", d.Nak(ctx, storeRetry))
		return
	case final:
		// Run and recorded already, by a server that died before its
		// acknowledgement or whose acknowledgement was late.
		g.releaseHeld(j.ID)
		g.settle(ctx, "ack", d.Ack(ctx))
		return
	}
	res, ran := g.runJob(ctx, d, j, log)
	if !ran {
		return
	}
	// The result is written and acknowledged even when this server began
	// stopping meanwhile: the run is over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := g.cfg.Async.finish(ctx, j.ID, j.Rev, res, j.JWT); err != nil {
		// Another run's result may have landed first (the update at our
		// revision then fails): the next delivery finds it final.
		log.Error("async result not recorded", logkey.Error, err)
		g.settle(ctx, "nak", d.Nak(ctx, storeRetry))
		return
	}
	g.releaseHeld(j.ID)
	g.settle(ctx, "ack", d.Ack(ctx))
}

// runJob runs j's function, reporting progress to the queue meanwhile,
// and returns its outcome; false when the delivery was handed back
// instead (the server is stopping, or the function is unknown here).
func (g *Gateway) runJob(ctx context.Context, d QueuedInvocation, j *queuedJob, log *slog.Logger) (AsyncResult, bool) {
	res := AsyncResult{Status: "done", Owner: j.Owner}
	if d.Attempt() > maxQueueAttempts {
		log.Warn("queued invocation given up", logkey.Attempts, d.Attempt()-1)
		res.Status, res.Error = "failed", "invocation abandoned after repeated server failures"
		return res, true
	}
	fn, ok := g.cfg.Snapshot().Function(j.App, j.Function)
	if !ok {
		if d.Attempt() < absentAttempts {
			g.settle(ctx, "nak", d.Nak(ctx, absentRetry))
			return res, false
		}
		res.Status, res.Error = "failed", "not found"
		return res, true
	}
	runCtx, cancel := context.WithTimeout(ctx, asyncTimeout)
	defer cancel()
	go func() {
		t := time.NewTicker(queueHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				_ = d.InProgress(runCtx)
			}
		}
	}()
	resp, err := g.cfg.Dispatcher.Invoke(runCtx, fn, j.request())
	if ctx.Err() != nil || errors.Is(err, dispatch.ErrDraining) {
		// This server is stopping: the run was cut short by it, or
		// refused, not by the function. Another server runs it; this one
		// takes no more, so a long drain does not spend the invocations'
		// attempts handing them back.
		g.settle(ctx, "nak", d.Nak(context.WithoutCancel(ctx), drainRetry))
		g.haltOnce.Do(func() { go g.haltQueue() })
		return res, false
	}
	if err != nil {
		res.Status, res.Error = "failed", httperr.Of(err).Message
		return res, true
	}
	st := resp.Status
	if st == 0 {
		st = 200
	}
	res.Response = &AsyncResponse{Status: st, Headers: resp.Headers, Body: resp.Body}
	return res, true
}

// settle logs an acknowledgement the queue did not take: the delivery is
// then redelivered, which the record's revision makes harmless.
func (g *Gateway) settle(ctx context.Context, what string, err error) {
	if err != nil && ctx.Err() == nil {
		g.log.Warn("queued invocation not "+what+"ed", logkey.Error, err)
	}
}
