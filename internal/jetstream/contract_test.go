package jetstream

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/kvcontract"
)

// The contract every way of reaching JetStream must honour: the embedded
// server in-process, the embedded server over TCP by URL (the external code
// path without leaving the machine), and a real external NATS when
// AEGIS_TEST_NATS_URL names one.
func TestContract(t *testing.T) {
	type target struct {
		name string
		open func(t *testing.T) *Node
	}
	targets := []target{
		{"embedded", func(t *testing.T) *Node { return openEmbedded(t, "") }},
		{"url", func(t *testing.T) *Node {
			srv := openEmbedded(t, "127.0.0.1:0")
			n, err := Open(context.Background(), Config{URL: srv.ClientURL(), ClientSeed: testSeed})
			noErr(t, err)
			t.Cleanup(func() { _ = n.Close(context.Background()) })
			return n
		}},
	}
	if url := os.Getenv("AEGIS_TEST_NATS_URL"); url != "" {
		targets = append(targets, target{"external", func(t *testing.T) *Node {
			n, err := Open(context.Background(), Config{URL: url})
			noErr(t, err)
			t.Cleanup(func() { _ = n.Close(context.Background()) })
			return n
		}})
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, n *Node)
	}{
		{"KV", testKV},
		{"BucketHandles", testBucketHandles},
		{"Objects", testObjects},
		{"PublishDedup", testPublishDedup},
		{"ConsumeAck", testConsumeAck},
		{"NakDelay", testNakDelay},
		{"MaxDeliver", testMaxDeliver},
		{"Term", testTerm},
		{"StopWaits", testStopWaits},
		{"Concurrency", testConcurrency},
		{"StreamMessages", testStreamMessages},
		{"StreamTail", testStreamTail},
		{"Follow", testFollow},
		{"DeleteConsumer", testDeleteConsumer},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			n := tg.open(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.fn(t, n) })
			}
		})
	}
}

func bucket(t *testing.T, n *Node) *Bucket {
	name := uniq(t)
	b, err := n.Bucket(testCtx(t), name, BucketOptions{History: 3, Description: "test"})
	noErr(t, err)
	t.Cleanup(func() { _ = n.js.DeleteKeyValue(context.Background(), name) })
	return b
}

// stream creates a stream capturing "<name>.>" and returns name and subject prefix.
func stream(t *testing.T, n *Node) (name, subj string) {
	name = uniq(t)
	subj = "t_" + name
	noErr(t, n.EnsureStream(testCtx(t), StreamConfig{Name: name, Subjects: []string{subj + ".>"}, Duplicates: time.Minute}))
	t.Cleanup(func() { _ = n.js.DeleteStream(context.Background(), name) })
	return name, subj
}

// testKV runs the key-value contract (testkit/kvcontract), which
// testkit/memkv keeps as well, on buckets of n.
func testKV(t *testing.T, n *Node) {
	kvcontract.Run(t, kvcontract.Target{
		Open: func(t *testing.T) kvcontract.Store { return bucket(t, n) },
		OpenTTL: func(t *testing.T) kvcontract.TTLStore {
			name := uniq(t)
			b, err := n.Bucket(testCtx(t), name, BucketOptions{TTL: time.Hour, KeyTTLs: true})
			noErr(t, err)
			t.Cleanup(func() { _ = n.js.DeleteKeyValue(context.Background(), name) })
			return b
		},
	})
}

// testBucketHandles: handles are cached per name, whatever the options of
// the later calls.
func testBucketHandles(t *testing.T, n *Node) {
	b := bucket(t, n)
	again, err := n.Bucket(testCtx(t), b.Name(), BucketOptions{})
	noErr(t, err)
	equal(t, b, again)
	_, err = n.Bucket(testCtx(t), "bad name", BucketOptions{})
	isErr(t, err, aegis.ErrInvalidArgument)
}

func testObjects(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name := uniq(t)
	o, err := n.ObjectStore(ctx, name)
	noErr(t, err)
	t.Cleanup(func() { _ = n.js.DeleteObjectStore(context.Background(), name) })
	again, err := n.ObjectStore(ctx, name)
	noErr(t, err)
	equal(t, o, again)

	list, err := o.List(ctx, "")
	noErr(t, err)
	equal(t, []ObjectInfo{}, list)

	_, err = o.Get(ctx, "images/none.png")
	isErr(t, err, aegis.ErrNotFound)
	has, err := o.Has(ctx, "images/none.png")
	noErr(t, err)
	equal(t, false, has)
	isErr(t, o.Delete(ctx, "images/none.png"), aegis.ErrNotFound)

	// Larger than one chunk (128 KiB), to exercise chunking.
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000)
	noErr(t, o.Put(ctx, "images/b.png", big))
	noErr(t, o.Put(ctx, "images/a.png", []byte("a")))
	noErr(t, o.Put(ctx, "thumbs/a.png", []byte("ta")))
	noErr(t, o.Put(ctx, "images/a.png", []byte("a2"))) // replace

	got, err := o.Get(ctx, "images/b.png")
	noErr(t, err)
	if !bytes.Equal(big, got) {
		t.Fatalf("big object differs: %d bytes back, want %d", len(got), len(big))
	}
	got, err = o.Get(ctx, "images/a.png")
	noErr(t, err)
	equal(t, "a2", string(got))
	has, err = o.Has(ctx, "thumbs/a.png")
	noErr(t, err)
	equal(t, true, has)

	list, err = o.List(ctx, "images/")
	noErr(t, err)
	equal(t, 2, len(list))
	equal(t, "images/a.png", list[0].Key)
	equal(t, uint64(2), list[0].Size)
	equal(t, "images/b.png", list[1].Key)
	equal(t, uint64(len(big)), list[1].Size)
	if list[0].Modified.IsZero() || time.Since(list[0].Modified) > time.Minute {
		t.Fatalf("modified time %v", list[0].Modified)
	}

	noErr(t, o.Delete(ctx, "images/a.png"))
	_, err = o.Get(ctx, "images/a.png")
	isErr(t, err, aegis.ErrNotFound)
	isErr(t, o.Delete(ctx, "images/a.png"), aegis.ErrNotFound)
	list, err = o.List(ctx, "")
	noErr(t, err)
	keys := []string{}
	for _, i := range list {
		keys = append(keys, i.Key)
	}
	equal(t, []string{"images/b.png", "thumbs/a.png"}, keys)
}

func testPublishDedup(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)

	s1, err := n.Publish(ctx, subj+".a", []byte("one"), map[string]string{"Trace-Id": "t1"}, "id-1")
	noErr(t, err)
	s2, err := n.Publish(ctx, subj+".a", []byte("one again"), nil, "id-1")
	noErr(t, err)
	equal(t, s1, s2)
	s3, err := n.Publish(ctx, subj+".a", []byte("two"), nil, "")
	noErr(t, err)
	s4, err := n.Publish(ctx, subj+".a", []byte("two"), nil, "")
	noErr(t, err)
	if s3 == s4 || s3 == s1 {
		t.Fatalf("publishes without id were deduplicated: %d %d %d", s1, s3, s4)
	}

	msgs, err := n.StreamMessages(ctx, name, "", 0)
	noErr(t, err)
	equal(t, 3, len(msgs))
	equal(t, "one", string(msgs[0].Data))
	equal(t, "t1", msgs[0].Headers["Trace-Id"])

	_, err = n.Publish(ctx, "no_stream_has_this.subject", nil, nil, "")
	isErr(t, err, aegis.ErrUnavailable)
}

// collector records deliveries for consume tests.
type collector struct {
	mu   sync.Mutex
	msgs []*Message
}

func (c *collector) add(m *Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) get(i int) *Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[i]
}

func testConsumeAck(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	for i := range 3 {
		_, err := n.Publish(ctx, subj+".x", []byte{byte('a' + i)}, nil, "")
		noErr(t, err)
	}
	var c collector
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "d", AckWait: 300 * time.Millisecond},
		func(ctx context.Context, m *Message) {
			c.add(m)
			if err := m.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
		})
	noErr(t, err)
	eventually(t, 3*time.Second, func() bool { return c.len() == 3 }, "three deliveries")
	// Acked messages are not redelivered after AckWait.
	time.Sleep(500 * time.Millisecond)
	sub.Stop()
	sub.Stop()
	equal(t, 3, c.len())
	seqs := []uint64{}
	for i := range 3 {
		m := c.get(i)
		equal(t, uint64(1), m.NumDelivered)
		seqs = append(seqs, m.Seq)
	}
	slices.Sort(seqs)
	equal(t, []uint64{1, 2, 3}, seqs)

	info, err := n.js.Consumer(ctx, name, "d")
	noErr(t, err)
	equal(t, 0, info.CachedInfo().NumAckPending)
	equal(t, uint64(0), info.CachedInfo().NumPending)

	// Messages that did not come from a consumer cannot be acknowledged.
	m, err := n.StreamMessage(ctx, name, 1)
	noErr(t, err)
	isErr(t, m.Ack(ctx), aegis.ErrInvalidArgument)
}

func testNakDelay(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	_, err := n.Publish(ctx, subj+".x", []byte("retry me"), nil, "")
	noErr(t, err)

	var c collector
	var times sync.Map
	const delay = 300 * time.Millisecond
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "d"}, func(ctx context.Context, m *Message) {
		times.Store(m.NumDelivered, time.Now())
		c.add(m)
		if m.NumDelivered == 1 {
			noErr(t, m.Nak(ctx, delay))
			return
		}
		noErr(t, m.Ack(ctx))
	})
	noErr(t, err)
	defer sub.Stop()
	eventually(t, 3*time.Second, func() bool { return c.len() == 2 }, "redelivery after nak")
	equal(t, uint64(2), c.get(1).NumDelivered)
	equal(t, c.get(0).Seq, c.get(1).Seq)
	t1, _ := times.Load(uint64(1))
	t2, _ := times.Load(uint64(2))
	if gap := t2.(time.Time).Sub(t1.(time.Time)); gap < delay-50*time.Millisecond {
		t.Fatalf("redelivered after %s, want at least %s", gap, delay)
	}
}

func testMaxDeliver(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	_, err := n.Publish(ctx, subj+".x", []byte("poison"), nil, "")
	noErr(t, err)
	var c collector
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "d", MaxDeliver: 3}, func(ctx context.Context, m *Message) {
		c.add(m)
		noErr(t, m.Nak(ctx, 0))
	})
	noErr(t, err)
	defer sub.Stop()
	eventually(t, 3*time.Second, func() bool { return c.len() == 3 }, "three deliveries")
	time.Sleep(400 * time.Millisecond)
	equal(t, 3, c.len())
	equal(t, uint64(3), c.get(2).NumDelivered)
}

func testTerm(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	_, err := n.Publish(ctx, subj+".x", []byte("bad"), nil, "")
	noErr(t, err)
	var c collector
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "d", AckWait: 200 * time.Millisecond}, func(ctx context.Context, m *Message) {
		c.add(m)
		noErr(t, m.Term(ctx))
	})
	noErr(t, err)
	defer sub.Stop()
	eventually(t, 3*time.Second, func() bool { return c.len() == 1 }, "first delivery")
	// Longer than AckWait: an unterminated message would be back by now.
	time.Sleep(500 * time.Millisecond)
	equal(t, 1, c.len())
}

func testStopWaits(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	_, err := n.Publish(ctx, subj+".x", nil, nil, "")
	noErr(t, err)
	started := make(chan struct{})
	var finished atomic.Bool
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "d"}, func(ctx context.Context, m *Message) {
		close(started)
		// InProgress on a slow handler keeps the message from timing out.
		noErr(t, m.InProgress(ctx))
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		noErr(t, m.Ack(ctx))
	})
	noErr(t, err)
	<-started
	sub.Stop()
	if !finished.Load() {
		t.Fatal("Stop returned before the handler finished")
	}
	sub.Stop()
}

func testConcurrency(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	for range 12 {
		_, err := n.Publish(ctx, subj+".x", nil, nil, "")
		noErr(t, err)
	}
	var running, peak, done atomic.Int32
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "d", MaxAckPending: 4}, func(ctx context.Context, m *Message) {
		now := running.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		running.Add(-1)
		noErr(t, m.Ack(ctx))
		done.Add(1)
	})
	noErr(t, err)
	defer sub.Stop()
	eventually(t, 5*time.Second, func() bool { return done.Load() == 12 }, "all handled")
	if p := peak.Load(); p < 2 || p > 4 {
		t.Fatalf("peak concurrency %d, want 2..4", p)
	}
}

func testStreamTail(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)

	msgs, err := n.StreamTail(ctx, name, "", 10)
	noErr(t, err)
	equal(t, 0, len(msgs))
	_, err = n.StreamTail(ctx, "no_such_stream", "", 10)
	isErr(t, err, aegis.ErrNotFound)

	for i := range 9 {
		kind := "dead"
		if i%3 == 2 {
			kind = "live"
		}
		_, err := n.Publish(ctx, fmt.Sprintf("%s.%s", subj, kind), fmt.Appendf(nil, "%d", i+1), nil, "")
		noErr(t, err)
	}
	// The last two "dead" messages are 7 and 8, oldest first.
	msgs, err = n.StreamTail(ctx, name, subj+".dead", 2)
	noErr(t, err)
	equal(t, 2, len(msgs))
	equal(t, "7", string(msgs[0].Data))
	equal(t, "8", string(msgs[1].Data))
	// Asking for more than there are returns them all.
	msgs, err = n.StreamTail(ctx, name, subj+".live", 10)
	noErr(t, err)
	equal(t, 3, len(msgs))
	equal(t, "3", string(msgs[0].Data))
	msgs, err = n.StreamTail(ctx, name, "", 4)
	noErr(t, err)
	equal(t, 4, len(msgs))
	equal(t, "6", string(msgs[0].Data))
}

func testStreamMessages(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)

	msgs, err := n.StreamMessages(ctx, name, "", 10)
	noErr(t, err)
	equal(t, 0, len(msgs))
	_, err = n.StreamMessages(ctx, "no_such_stream", "", 10)
	isErr(t, err, aegis.ErrNotFound)
	_, err = n.StreamMessage(ctx, name, 1)
	isErr(t, err, aegis.ErrNotFound)

	for i := range 6 {
		kind := "dead"
		if i%2 == 1 {
			kind = "live"
		}
		_, err := n.Publish(ctx, fmt.Sprintf("%s.%s", subj, kind), fmt.Appendf(nil, "%d", i+1), nil, "")
		noErr(t, err)
	}
	dead := subj + ".dead"
	msgs, err = n.StreamMessages(ctx, name, dead, 0)
	noErr(t, err)
	equal(t, 3, len(msgs))
	for i, want := range []uint64{1, 3, 5} {
		equal(t, want, msgs[i].Seq)
		equal(t, dead, msgs[i].Subject)
		if msgs[i].Timestamp.IsZero() {
			t.Fatal("no timestamp")
		}
	}
	msgs, err = n.StreamMessages(ctx, name, "", 4)
	noErr(t, err)
	equal(t, 4, len(msgs))
	equal(t, uint64(4), msgs[3].Seq)

	m, err := n.StreamMessage(ctx, name, 3)
	noErr(t, err)
	equal(t, "3", string(m.Data))

	noErr(t, n.DeleteStreamMessage(ctx, name, 3))
	_, err = n.StreamMessage(ctx, name, 3)
	isErr(t, err, aegis.ErrNotFound)
	isErr(t, n.DeleteStreamMessage(ctx, name, 3), aegis.ErrNotFound)
	msgs, err = n.StreamMessages(ctx, name, dead, 0)
	noErr(t, err)
	equal(t, 2, len(msgs))
	equal(t, uint64(5), msgs[1].Seq)
}

func testFollow(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, subj := stream(t, n)
	logs := subj + ".log"
	for i := range 5 {
		_, err := n.Publish(ctx, logs, fmt.Appendf(nil, "%d", i+1), nil, "")
		noErr(t, err)
		_, err = n.Publish(ctx, subj+".other", nil, nil, "")
		noErr(t, err)
	}

	follow := func(filter string, lastN int) (*collector, context.CancelFunc, chan error) {
		var c collector
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- n.Follow(fctx, name, filter, lastN, c.add) }()
		return &c, cancel, done
	}
	data := func(c *collector) []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		out := []string{}
		for _, m := range c.msgs {
			out = append(out, string(m.Data))
		}
		return out
	}

	last2, stop2, done2 := follow(logs, 2)
	all, stopAll, doneAll := follow(logs, 100)
	newOnly, stopNew, doneNew := follow(logs, 0)
	eventually(t, 3*time.Second, func() bool { return last2.len() == 2 && all.len() == 5 }, "backlog")
	// Ordered consumers start asynchronously; give the new-only one a
	// moment to be in place before publishing.
	time.Sleep(200 * time.Millisecond)
	_, err := n.Publish(ctx, logs, []byte("6"), nil, "")
	noErr(t, err)
	eventually(t, 3*time.Second, func() bool { return last2.len() == 3 && all.len() == 6 && newOnly.len() == 1 }, "new message")

	equal(t, []string{"4", "5", "6"}, data(last2))
	equal(t, []string{"1", "2", "3", "4", "5", "6"}, data(all))
	equal(t, []string{"6"}, data(newOnly))
	isErr(t, last2.get(0).Ack(ctx), aegis.ErrInvalidArgument)

	for _, s := range []struct {
		stop context.CancelFunc
		done chan error
	}{{stop2, done2}, {stopAll, doneAll}, {stopNew, doneNew}} {
		s.stop()
		select {
		case err := <-s.done:
			noErr(t, err)
		case <-time.After(3 * time.Second):
			t.Fatal("Follow did not return after cancel")
		}
	}

	// Without a filter, the whole stream; the last 3 of 11 messages.
	every, stopEvery, doneEvery := follow("", 3)
	eventually(t, 3*time.Second, func() bool { return every.len() == 3 }, "unfiltered backlog")
	equal(t, uint64(9), every.get(0).Seq)
	stopEvery()
	noErr(t, <-doneEvery)

	// No probe consumers are left behind.
	info, err := n.js.Stream(ctx, name)
	noErr(t, err)
	eventually(t, 3*time.Second, func() bool {
		si, err := info.Info(ctx)
		return err == nil && si.State.Consumers == 0
	}, "consumers cleaned up")

	err = n.Follow(ctx, "no_such_stream", "", 1, func(*Message) {})
	isErr(t, err, aegis.ErrNotFound)
}

func testDeleteConsumer(t *testing.T, n *Node) {
	ctx := testCtx(t)
	name, _ := stream(t, n)
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: name, Durable: "gone", DeliverNew: true}, func(context.Context, *Message) {})
	noErr(t, err)
	sub.Stop()
	noErr(t, n.DeleteConsumer(ctx, name, "gone"))
	isErr(t, n.DeleteConsumer(ctx, name, "gone"), aegis.ErrNotFound)

	_, err = n.Consume(ctx, ConsumerConfig{Stream: "no_such_stream", Durable: "d"}, func(context.Context, *Message) {})
	isErr(t, err, aegis.ErrNotFound)
	_, err = n.Consume(ctx, ConsumerConfig{Stream: name}, func(context.Context, *Message) {})
	isErr(t, err, aegis.ErrInvalidArgument)
}
