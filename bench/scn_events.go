package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/vault"
)

// Scenario 6 pushes M events through the whole pipeline: published straight
// into the event stream, consumed by the trigger's durable consumer, each
// invoking a function and acknowledged. The baseline is the same M messages
// published the same way into a stream configured like the bus's on a node
// of the same kind, consumed by the same consumer loop with the bus's
// settings (durable pull consumer, as many in flight as the function's
// concurrency (10 by default), explicit ack waiting for
// the server's confirmation), whose handler only acks. What separates the
// two is therefore exactly what the platform adds per event: the bus's
// handling, the dispatch with its invocation record, and the invocation.
//
// Both sides publish signed events (the envelope of docs/events.md, as if
// from the app's function "source", which holds the publish grant), so
// the subject verifies them as it would any event and the publisher's
// signing cost is on both sides. Both publish from a nats.go connection
// over loopback TCP, with up to
// publishWindow publishes awaiting their acks, and are timed from the first
// publish until the consumer's ack floor reaches the last message, read from
// consumer info polled the same way on both. The bench reads consumer state
// with nats.go directly because the platform deliberately exposes none.

func init() {
	register(Scenario{ID: 6, Name: "event pipeline: publish → trigger → function → ack", Run: runEvents})
}

const (
	eventsApp     = "evbench"
	eventsSubject = "aegis.ev." + eventsApp + ".tick"
	eventsStream  = "AEGIS_EVENTS"
	publishWindow = 1024
	pollEvery     = 5 * time.Millisecond
)

// The guest is the C no-op reactor: it succeeds without a host call, so the
// figure is the pipeline's, not the handler's.
const eventsManifest = `app: evbench
functions:
  sink:
    source: sink.wasm
    triggers:
      - event: { topic: tick }
  source:
    source: sink.wasm
    grants:
      events: { publish: [tick] }
`

func runEvents(ctx context.Context, env *Env) ([]*Result, error) {
	m, wait := 50000, 2*time.Minute
	if env.Quick {
		m, wait = 500, 30*time.Second
	}
	wasm, err := env.CModule(ctx, fixtureCNoop, true)
	if err != nil {
		return nil, err
	}
	in, acc, err := startServerWithNATS(ctx, env)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if _, err := in.Deploy(ctx, eventsApp, eventsManifest, wasm, "sink", "source"); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	subject, err := openPump(ctx, acc)
	if err != nil {
		return nil, err
	}
	defer subject.close()

	base, err := startRawEvents(ctx, env, acc.EventKey)
	if err != nil {
		return nil, err
	}
	defer base.close()
	base.pump.seal = subject.seal

	var lost int
	var redelivered uint64
	b, s, samples, err := Alternate(env.Rounds,
		func() (float64, error) {
			rate, left, _, err := base.pump.run(ctx, m, wait)
			if err == nil && left > 0 {
				err = fmt.Errorf("baseline lost %d of %d messages", left, m)
			}
			return rate, err
		},
		func() (float64, error) {
			rate, left, redel, err := subject.run(ctx, m, wait)
			lost += left
			redelivered += redel
			return rate, err
		})
	if err != nil {
		return nil, err
	}
	dead, err := in.Admin.DLQ(ctx, eventsApp)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	lost += len(dead)
	records, err := subject.settledRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("count invocation records: %w", err)
	}

	rel := ratioResult("event pipeline throughput", "events/s", "raw JetStream publish + consume + ack", b, s, samples)
	if b > 0 {
		rel.Ratio = s / b
	}
	rel.RatioNote = "pipeline / raw; higher is better"
	rel.Target = "≥ 0.5"
	rel.Met = Met(rel.Ratio >= 0.5)
	rel.Notes = fmt.Sprintf("%d events per round, C no-op reactor (default limits: concurrency 10), consumer with 10 in flight (the bus caps unacknowledged events at the function's concurrency); "+
		"timed from the first publish to the ack floor reaching the last event; %d CPUs.", m, runtime.GOMAXPROCS(0))
	// A round far below the median is a consumer stall (see the
	// component notes in docs/performance.md), not noise: say how many.
	var stalls int
	for _, p := range samples {
		if p.Subject < s/5 {
			stalls++
		}
	}
	if stalls > 0 {
		rel.Notes += fmt.Sprintf(" %d of %d rounds stalled (under a fifth of the median).", stalls, len(samples))
	}
	abs := &Result{Name: "event pipeline throughput, absolute", Unit: "events/s", Subject: s, Target: "≥ 10,000/s", Met: Met(s >= 10000)}
	lr := &Result{Name: "events lost", Unit: "events", Subject: float64(lost), Target: "0", Met: Met(lost == 0),
		Notes: fmt.Sprintf("published − acknowledged after success, over %d rounds, dead letters included; %d redeliveries; "+
			"%d invocation records in the function log for %d events published (records are dropped, by design, when the log's queue is full).",
			env.Rounds, redelivered, records, subject.sent)}
	return []*Result{rel, abs, lr}, nil
}

// natsAccess is how the bench reaches a server's NATS from outside, as
// an insider holding the server's keys could: the port, the one client key
// it accepts (a seed file, as nats.go reads one), the event signing key
// and the vault's master key.
type natsAccess struct {
	URL       string
	SeedFile  string
	EventKey  []byte
	MasterKey vault.MasterKeyOptions
}

// startServerWithNATS starts a server like env.StartServer does, with its
// embedded NATS also listening on a loopback port, and returns how to
// reach that NATS: with the client key the server wrote to its data
// directory (DATA/keys/nats.nk), since the port accepts no one else.
func startServerWithNATS(ctx context.Context, env *Env) (*Instance, natsAccess, error) {
	in, err := env.StartServerWith(ctx, "", func(c *server.Config) { c.NATSListen = "127.0.0.1:0" })
	if err != nil {
		return nil, natsAccess{}, err
	}
	key, err := readEventKey(in.DataDir)
	if err != nil {
		in.Close()
		return nil, natsAccess{}, err
	}
	return in, natsAccess{
		URL:       in.Srv.NATSURL(),
		SeedFile:  filepath.Join(in.DataDir, "keys", "nats.nk"),
		EventKey:  key,
		MasterKey: env.MasterKey(),
	}, nil
}

// readEventKey reads the event signing key the server created in its data
// directory.
func readEventKey(dataDir string) ([]byte, error) {
	text, err := os.ReadFile(filepath.Join(dataDir, "keys", "events.key"))
	if err != nil {
		return nil, fmt.Errorf("read event signing key: %w", err)
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("read event signing key: %w", err)
	}
	return key, nil
}

// openPump connects to the NATS acc names and returns a pump publishing
// signed, sealed events of the bench app into it.
func openPump(ctx context.Context, acc natsAccess) (*eventPump, error) {
	seal, closeVault, err := payloadSealer(ctx, acc)
	if err != nil {
		return nil, err
	}
	p, err := dialEvents(ctx, acc.URL, acc.SeedFile, "", acc.EventKey)
	if err != nil {
		closeVault()
		return nil, err
	}
	p.seal, p.closeVault = seal, closeVault
	return p, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the server binds it; on a bench machine that is unlikely
// and shows up as a failed start, not a wrong figure.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// eventPump publishes rounds of events and watches one durable consumer
// work through them.
type eventPump struct {
	nc   *nats.Conn
	js   natsjs.JetStream
	cons natsjs.Consumer
	key  []byte // event signing key
	sent int    // events published so far, for unique request ids
	// seal seals a payload as the bus does before it is stored (nil: as
	// it is).
	seal func([]byte) ([]byte, error)
	// closeVault closes the connection seal uses (nil: none).
	closeVault func()
}

// payloadSealer returns what seals an event payload of the bench app as
// the server's bus does: the app's data key from the server's vault,
// reached through its NATS with its master key, as an insider holding
// both could. Both sides of the scenario seal, as both sign: the
// publisher's cost is the same on each.
func payloadSealer(ctx context.Context, acc natsAccess) (func([]byte) ([]byte, error), func(), error) {
	seed, err := jetstream.ReadSeedFile(acc.SeedFile)
	if err != nil {
		return nil, nil, err
	}
	node, err := jetstream.Open(ctx, jetstream.Config{URL: acc.URL, ClientSeed: seed})
	if err != nil {
		return nil, nil, err
	}
	closeNode := func() { _ = node.Close(context.Background()) }
	bucket, err := node.Bucket(ctx, vault.Bucket, jetstream.BucketOptions{History: 1})
	if err != nil {
		closeNode()
		return nil, nil, err
	}
	kek, _, err := vault.LoadMasterKey(acc.MasterKey)
	if err != nil {
		closeNode()
		return nil, nil, err
	}
	v, err := vault.Open(ctx, vault.Config{Store: bucket, KMS: kek})
	if err != nil {
		closeNode()
		return nil, nil, err
	}
	ad := bus.PayloadAD(eventsSubject)
	return func(p []byte) ([]byte, error) { return v.SealData(ctx, eventsApp, ad, p) }, closeNode, nil
}

// dialEvents connects to url with the client key in seedFile and finds
// the consumer of eventsSubject: durable when given, otherwise whichever
// consumer filters on the subject (the bus names its own), waiting for it
// to appear after a deploy.
func dialEvents(ctx context.Context, url, seedFile, durable string, key []byte) (*eventPump, error) {
	auth, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	nc, err := nats.Connect(url, nats.Name("aegis-bench"), auth)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(publishWindow))
	if err != nil {
		nc.Close()
		return nil, err
	}
	p := &eventPump{nc: nc, js: js, key: key}
	deadline := time.Now().Add(10 * time.Second)
	for p.cons == nil {
		if p.cons, err = findConsumer(ctx, js, durable); err != nil {
			nc.Close()
			return nil, err
		}
		if p.cons == nil {
			if time.Now().After(deadline) {
				nc.Close()
				return nil, fmt.Errorf("no consumer of %s after 10s", eventsSubject)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p, nil
}

func findConsumer(ctx context.Context, js natsjs.JetStream, durable string) (natsjs.Consumer, error) {
	if durable != "" {
		c, err := js.Consumer(ctx, eventsStream, durable)
		if errors.Is(err, natsjs.ErrConsumerNotFound) {
			return nil, nil
		}
		return c, err
	}
	s, err := js.Stream(ctx, eventsStream)
	if err != nil {
		return nil, err
	}
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		c, err := s.Consumer(ctx, name)
		if err != nil {
			return nil, err
		}
		if c.CachedInfo().Config.FilterSubject == eventsSubject {
			return c, nil
		}
	}
	return nil, names.Err()
}

func (p *eventPump) close() {
	p.nc.Close()
	if p.closeVault != nil {
		p.closeVault()
	}
}

// settledRecords counts the sink's invocation records in the function log
// once the count stops growing: the log publishes them after the events
// are acknowledged, from its own queue.
func (p *eventPump) settledRecords(ctx context.Context) (uint64, error) {
	subj := "aegis.log." + eventsApp + ".sink"
	s, err := p.js.Stream(ctx, funclog.Stream)
	if err != nil {
		return 0, err
	}
	var last uint64
	for i := 0; i < 50; i++ {
		info, err := s.Info(ctx, natsjs.WithSubjectFilter(subj))
		if err != nil {
			return 0, err
		}
		n := info.State.Subjects[subj]
		if i > 0 && n == last {
			break
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
	return last, nil
}

// run publishes m events and waits until the consumer has acknowledged all
// of them or wait has passed. It returns events per second, how many were
// still unacknowledged at the end, and how many redeliveries the consumer
// made during the round.
func (p *eventPump) run(ctx context.Context, m int, wait time.Duration) (rate float64, left int, redelivered uint64, err error) {
	before, err := p.cons.Info(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	acks := make([]natsjs.PubAckFuture, 0, m)
	for i := 0; i < m; i++ {
		msg := nats.NewMsg(eventsSubject)
		msg.Data = []byte(`{"n":` + strconv.Itoa(p.sent) + `}`)
		if p.seal != nil {
			if msg.Data, err = p.seal(msg.Data); err != nil {
				return 0, m, 0, fmt.Errorf("seal %d: %w", i, err)
			}
		}
		env := bus.NewEnvelope(eventsApp+"/source@v1", fmt.Sprintf("bench-%016x", p.sent), 1)
		for k, v := range env.Headers(p.key, eventsSubject, msg.Data) {
			msg.Header.Set(k, v)
		}
		// As the bus publishes: the event id is the message id.
		msg.Header.Set(natsjs.MsgIDHeader, env.ID)
		p.sent++
		// A busy machine can hold the window full for longer than the
		// default 200 ms stall wait; waiting is the point, not an error.
		f, err := p.js.PublishMsgAsync(msg, natsjs.WithStallWait(30*time.Second))
		if err != nil {
			return 0, m, 0, fmt.Errorf("publish %d: %w", i, err)
		}
		acks = append(acks, f)
	}
	var last uint64
	for i, f := range acks {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			return 0, m, 0, fmt.Errorf("publish %d: %w", i, err)
		case <-ctx.Done():
			return 0, m, 0, ctx.Err()
		}
	}
	deadline := start.Add(wait)
	for {
		info, err := p.cons.Info(ctx)
		if err != nil {
			return 0, m, 0, err
		}
		// Deliveries beyond one per event are redeliveries (the consumer
		// sees only this subject).
		if d := info.Delivered.Consumer - before.Delivered.Consumer; d > uint64(m) {
			redelivered = d - uint64(m)
		}
		if info.AckFloor.Stream >= last && info.NumAckPending == 0 {
			return float64(m) / time.Since(start).Seconds(), 0, redelivered, nil
		}
		if time.Now().After(deadline) {
			// Everything past the ack floor is unaccounted for, minus what
			// is acked out of order above it: a bound, good enough to say
			// "not zero".
			left = int(last - info.AckFloor.Stream)
			return float64(m-left) / time.Since(start).Seconds(), left, redelivered, nil
		}
		time.Sleep(pollEvery)
	}
}

// rawEvents is the baseline: a node like the server's with the bus's
// stream and a consumer loop that only acks.
type rawEvents struct {
	node *jetstream.Node
	sub  *jetstream.Subscription
	pump *eventPump
}

func startRawEvents(ctx context.Context, env *Env, key []byte) (*rawEvents, error) {
	// A port, as the server in scenario 6 opens one, with its client key.
	seed, err := jetstream.NewClientSeed()
	if err != nil {
		return nil, err
	}
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: env.TempDir(), Listen: "127.0.0.1:0", ClientSeed: seed})
	if err != nil {
		return nil, err
	}
	r := &rawEvents{node: node}
	// The bus's stream and consumer settings (internal/bus: Open, Sync).
	if err := node.EnsureStream(ctx, jetstream.StreamConfig{
		Name: eventsStream, Subjects: []string{"aegis.ev.>", "aegis.obj.>"},
		MaxAge: 7 * 24 * time.Hour, Duplicates: 2 * time.Minute,
		MaxBytes: 1 << 30, DiscardNew: true, AllowMsgTTL: true, // bus.Limits' defaults
	}); err != nil {
		r.close()
		return nil, err
	}
	r.sub, err = node.Consume(context.Background(), jetstream.ConsumerConfig{
		Stream: eventsStream, Durable: "bench_raw", FilterSubject: eventsSubject,
		MaxDeliver: 4, AckWait: 35 * time.Second, MaxAckPending: 10, DeliverNew: true,
	}, func(ctx context.Context, m *jetstream.Message) { _ = m.Ack(ctx) })
	if err != nil {
		r.close()
		return nil, err
	}
	seedFile := filepath.Join(env.TempDir(), "nats.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		r.close()
		return nil, err
	}
	if r.pump, err = dialEvents(ctx, node.ClientURL(), seedFile, "bench_raw", key); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *rawEvents) close() {
	if r.pump != nil {
		r.pump.close()
	}
	if r.sub != nil {
		r.sub.Stop()
	}
	_ = r.node.Close(context.Background())
}
