package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// memResults is a ResultStore in memory, with JetStream's revisions: one
// counter for every write.
type memResults struct {
	mu   sync.Mutex
	seq  uint64
	vals map[string][]byte
	revs map[string]uint64
}

func newMemResults() *memResults {
	return &memResults{vals: map[string][]byte{}, revs: map[string]uint64{}}
}

func (m *memResults) Get(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	if !ok {
		return nil, 0, aegis.ErrNotFound
	}
	return v, m.revs[key], nil
}

func (m *memResults) Create(_ context.Context, key string, v []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.vals[key]; ok {
		return 0, aegis.ErrConflict
	}
	m.seq++
	m.vals[key], m.revs[key] = v, m.seq
	return m.seq, nil
}

func (m *memResults) Update(_ context.Context, key string, v []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revs[key] != rev {
		return 0, aegis.ErrConflict
	}
	m.seq++
	m.vals[key], m.revs[key] = v, m.seq
	return m.seq, nil
}

// memQueue keeps what is enqueued.
type memQueue struct{ msgs []*fakeDelivery }

func (q *memQueue) Enqueue(_ context.Context, app, _ string, data []byte, h map[string]string) error {
	q.msgs = append(q.msgs, &fakeDelivery{app: app, data: data, headers: h, attempt: 1})
	return nil
}

func (q *memQueue) Consume(context.Context, int, func(context.Context, QueuedInvocation)) (func(), error) {
	return func() {}, nil
}

// fakeDelivery records how its handler settled it.
type fakeDelivery struct {
	app     string
	data    []byte
	headers map[string]string
	attempt int
	settled string
}

func (d *fakeDelivery) App() string               { return d.app }
func (d *fakeDelivery) Data() []byte              { return d.data }
func (d *fakeDelivery) Header(k string) string    { return d.headers[k] }
func (d *fakeDelivery) Attempt() int              { return d.attempt }
func (d *fakeDelivery) Ack(context.Context) error { d.settled = "ack"; return nil }
func (d *fakeDelivery) Term(context.Context) error {
	d.settled = "term"
	return nil
}
func (d *fakeDelivery) Nak(context.Context, time.Duration) error {
	d.settled = "nak"
	return nil
}
func (d *fakeDelivery) InProgress(context.Context) error { return nil }

// xorSealer "seals" by flipping bits and binding the AD in front, enough
// to tell sealed from clear and one binding from another.
type xorSealer struct{}

func (xorSealer) SealData(_ context.Context, app string, where, p []byte) ([]byte, error) {
	out := append([]byte(app+"|"+string(where)+"|"), p...)
	for i := range out {
		out[i] ^= 0x5a
	}
	return out, nil
}

func (xorSealer) OpenData(_ context.Context, app string, where, c []byte) ([]byte, error) {
	p := make([]byte, len(c))
	for i := range c {
		p[i] = c[i] ^ 0x5a
	}
	prefix := []byte(app + "|" + string(where) + "|")
	if !bytes.HasPrefix(p, prefix) {
		return nil, errors.New("does not open")
	}
	return p[len(prefix):], nil
}

func queueGateway(t *testing.T) (*Gateway, *memQueue, *memResults) {
	t.Helper()
	q, r := &memQueue{}, newMemResults()
	g := New(Config{Async: NewAsyncStore(r), Queue: q, Data: xorSealer{}, SigningKey: bytes.Repeat([]byte{7}, 32)})
	t.Cleanup(g.Close)
	return g, q, r
}

// pending records a pending invocation and queues it, as an accept does.
func pending(t *testing.T, g *Gateway) (string, uint64) {
	t.Helper()
	id, rev, err := g.cfg.Async.create(context.Background(), AsyncResult{Status: "pending", Owner: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := &sandbox.Request{Kind: sandbox.KindHTTP, RequestID: "req-1", Method: "POST", Path: "/p", Body: []byte("secret body"),
		Headers:  map[string][]string{"X-A": {"1"}},
		Identity: &sandbox.Identity{Scheme: "jwt", Subject: "alice", Issuer: "https://id", Claims: map[string]any{"k": "v"}, KeyID: "kid"},
		Origin:   "jwt:https://id#alice", Trace: telemetry.Span{TraceID: telemetry.NewID()}}
	if err := g.enqueue(context.Background(), newQueuedJob(id, rev, "app", "fn", "alice", nil, req)); err != nil {
		t.Fatal(err)
	}
	return id, rev
}

func TestQueuedInvocationIsSealedSignedAndOpensWhole(t *testing.T) {
	g, q, _ := queueGateway(t)
	id, rev := pending(t, g)
	d := q.msgs[0]
	if bytes.Contains(d.data, []byte("secret body")) || bytes.Contains(d.data, []byte("alice")) {
		t.Fatal("the queued invocation holds the caller's data in the clear")
	}
	j, err := g.openQueued(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	req := j.request()
	if j.ID != id || j.Rev != rev || j.App != "app" || j.Function != "fn" || j.Owner != "alice" ||
		string(req.Body) != "secret body" || req.Identity.Claims["k"] != "v" || req.Identity.KeyID != "kid" ||
		req.Origin != "jwt:https://id#alice" || req.Trace.TraceID == "" || req.Headers["X-A"][0] != "1" {
		t.Errorf("opened %+v / %+v", j, req)
	}
}

func TestQueuedInvocationTamperedIsRefused(t *testing.T) {
	g, q, _ := queueGateway(t)
	pending(t, g)
	orig := q.msgs[0]
	other := telemetry.NewID()
	tests := map[string]func(d *fakeDelivery){
		"no signature": func(d *fakeDelivery) { delete(d.headers, HeaderSignature) },
		"another key": func(d *fakeDelivery) {
			d.headers[HeaderSignature] = signQueued([]byte("not the key"), d.app, d.headers[HeaderInvocation], d.data)
		},
		"data changed": func(d *fakeDelivery) { d.data = append(bytes.Clone(d.data), 0) },
		"another id":   func(d *fakeDelivery) { d.headers[HeaderInvocation] = other },
		"another app":  func(d *fakeDelivery) { d.app = "other" },
		"re-signed elsewhere": func(d *fakeDelivery) {
			// Signed right, but for another app: the seal binds it to its own.
			d.app = "other"
			d.headers[HeaderSignature] = signQueued(g.cfg.SigningKey, d.app, d.headers[HeaderInvocation], d.data)
		},
	}
	for name, tamper := range tests {
		t.Run(name, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range orig.headers {
				h[k] = v
			}
			d := &fakeDelivery{app: orig.app, data: orig.data, headers: h, attempt: 1}
			tamper(d)
			if _, err := g.openQueued(context.Background(), d); err == nil {
				t.Fatal("opened")
			}
			g.runQueued(context.Background(), d)
			if d.settled != "term" {
				t.Errorf("settled by %q, want term", d.settled)
			}
		})
	}
}

// A delivery whose record is final (a run finished, its acknowledgement
// lost) is acknowledged without running again; one whose record is gone
// is dropped.
func TestQueuedInvocationAlreadyFinishedIsNotRunAgain(t *testing.T) {
	g, q, r := queueGateway(t)
	id, rev := pending(t, g)
	if err := g.cfg.Async.finish(context.Background(), id, rev, AsyncResult{Status: "done", Owner: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	d := q.msgs[0]
	d.attempt = 2
	g.runQueued(context.Background(), d) // a run would need a dispatcher and panic without one
	if d.settled != "ack" {
		t.Errorf("settled by %q, want ack", d.settled)
	}

	pending(t, g)
	gone := q.msgs[1]
	j, _ := g.openQueued(context.Background(), gone)
	r.mu.Lock()
	delete(r.vals, "inv."+j.ID)
	r.mu.Unlock()
	g.runQueued(context.Background(), gone)
	if gone.settled != "term" {
		t.Errorf("record gone: settled by %q, want term", gone.settled)
	}
}

// The slot an accept holds goes back when the result is final, whoever
// wrote it: at once on the server that ran it, by the sweep elsewhere.
func TestHeldSlotIsReleasedWhenTheResultIsFinal(t *testing.T) {
	g, _, _ := queueGateway(t)
	id, rev := pending(t, g)
	if q, _ := g.async.acquire("key:a", "app/fn"); q != "" {
		t.Fatal(q)
	}
	g.hold(id, "key:a", "app/fn")
	g.sweepOne(id, time.Now())
	if g.async.total != 1 {
		t.Fatalf("released while pending: %d held", g.async.total)
	}
	if err := g.cfg.Async.finish(context.Background(), id, rev, AsyncResult{Status: "failed", Owner: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	g.sweepOne(id, time.Now())
	g.releaseHeld(id) // a second release changes nothing
	if g.async.total != 0 || len(g.async.held) != 0 || len(g.async.byCaller) != 0 {
		t.Errorf("after the result: total %d, %d held, %d callers", g.async.total, len(g.async.held), len(g.async.byCaller))
	}
}

func TestQueuedJobKeepsItsFormat(t *testing.T) {
	// The fields a queued invocation carries are a format between servers
	// of different versions during an upgrade: renaming one breaks it.
	b, err := json.Marshal(newQueuedJob("i", 1, "a", "f", "o", &ownerJWT{Issuer: "iss"}, &sandbox.Request{
		Kind: "http", RequestID: "r", Identity: &sandbox.Identity{Scheme: "jwt", KeyID: "k"}}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"i","rev":1,"app":"a","function":"f","owner":"o","jwt":{"issuer":"iss","audience":"","algorithms":null,"skew":0},` +
		`"request":{"kind":"http","request_id":"r","identity":{"scheme":"jwt","key_id":"k"},"trace":{"TraceID":"","SpanID":"","ParentID":""}}}`
	if string(b) != want {
		t.Errorf("format changed:\n got %s\nwant %s", b, want)
	}
}
