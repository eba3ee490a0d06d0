package jetstream

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

// snapshotAll copies every stream of from into memory, in chunks as the
// server sent them.
func snapshotAll(t *testing.T, ctx context.Context, from *Node) map[string]*capturedStream {
	t.Helper()
	names, err := from.StreamNames(ctx)
	noErr(t, err)
	out := map[string]*capturedStream{}
	for _, name := range names {
		c := &capturedStream{}
		noErr(t, from.SnapshotStream(ctx, name, func(s StreamSnapshot) error {
			c.snap = s
			return nil
		}, func(b []byte) error {
			c.chunks = append(c.chunks, bytes.Clone(b))
			return nil
		}))
		if len(c.chunks) == 0 {
			t.Fatalf("snapshot of %s has no chunk", name)
		}
		out[name] = c
	}
	return out
}

type capturedStream struct {
	snap   StreamSnapshot
	chunks [][]byte
}

func restoreAll(t *testing.T, ctx context.Context, to *Node, streams map[string]*capturedStream) {
	t.Helper()
	for _, c := range streams {
		r, err := to.RestoreStream(ctx, c.snap)
		noErr(t, err)
		for _, b := range c.chunks {
			noErr(t, r.Write(ctx, b))
		}
		noErr(t, r.Finish(ctx))
	}
}

// TestSnapshotRestore copies every stream of one node to a fresh one and
// finds the same sequences (a first sequence past 1, a gap), the same
// key-value values and objects, and consumers that resume where they were.
func TestSnapshotRestore(t *testing.T) {
	ctx := testCtx(t)
	from := openEmbedded(t, "")

	name := uniq(t)
	noErr(t, from.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{name + ".>"}}))
	for i := 1; i <= 10; i++ {
		_, err := from.Publish(ctx, fmt.Sprintf("%s.e", name), fmt.Appendf(nil, "event %d", i), nil, "")
		noErr(t, err)
	}
	for _, seq := range []uint64{1, 2, 3, 6} {
		noErr(t, from.DeleteStreamMessage(ctx, name, seq))
	}
	// A durable consumer that handled the messages up to 5.
	var mu sync.Mutex
	var seen []uint64
	handled := make(chan struct{}, 16)
	sub, err := from.Consume(ctx, ConsumerConfig{Stream: name, Durable: "worker", FilterSubject: name + ".>", MaxAckPending: 1, AckWait: time.Second}, func(ctx context.Context, m *Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.Seq > 5 {
			return // left unacknowledged; Stop comes before AckWait
		}
		seen = append(seen, m.Seq)
		noErr(t, m.Ack(ctx))
		handled <- struct{}{}
	})
	noErr(t, err)
	for range 2 {
		<-handled
	}
	sub.Stop()

	kv, err := from.Bucket(ctx, "kv_"+name, BucketOptions{History: 1})
	noErr(t, err)
	_, err = kv.Put(ctx, "greeting", []byte("hello"))
	noErr(t, err)
	_, err = kv.Put(ctx, "greeting", []byte("hello again")) // revision 2
	noErr(t, err)
	obj, err := from.ObjectStore(ctx, "obj_"+name)
	noErr(t, err)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: several chunks of the object store
	noErr(t, obj.Put(ctx, "photos/big.bin", big))

	before, err := from.ConsumerBacklog(ctx, name)
	noErr(t, err)
	streams := snapshotAll(t, ctx, from)
	if streams[name].snap.FirstSeq != 4 || streams[name].snap.LastSeq != 10 || streams[name].snap.Messages != 6 {
		t.Fatalf("snapshot of %s: %+v", name, streams[name].snap)
	}

	to := openEmbedded(t, "")
	restoreAll(t, ctx, to, streams)

	// Sequences: 4, 5, 7, 8, 9, 10; 1-3 and 6 stay deleted.
	for seq := uint64(1); seq <= 10; seq++ {
		m, err := to.StreamMessage(ctx, name, seq)
		if seq <= 3 || seq == 6 {
			isErr(t, err, aegis.ErrNotFound)
			continue
		}
		noErr(t, err)
		equal(t, fmt.Sprintf("event %d", seq), string(m.Data))
	}
	last, _, err := to.StreamLast(ctx, name)
	noErr(t, err)
	equal(t, uint64(10), last)
	// The next message continues the sequence.
	seq, err := to.Publish(ctx, name+".e", []byte("event 11"), nil, "")
	noErr(t, err)
	equal(t, uint64(11), seq)

	rkv, err := to.Bucket(ctx, "kv_"+name, BucketOptions{History: 1})
	noErr(t, err)
	v, rev, err := rkv.Get(ctx, "greeting")
	noErr(t, err)
	equal(t, "hello again", string(v))
	equal(t, uint64(2), rev)
	robj, err := to.ObjectStore(ctx, "obj_"+name)
	noErr(t, err)
	got, err := robj.Get(ctx, "photos/big.bin")
	noErr(t, err)
	if !bytes.Equal(big, got) {
		t.Fatalf("object differs after restore: %d bytes, want %d", len(got), len(big))
	}

	// The consumer resumes after 5: 4 and 5 are not handled again.
	backlog, err := to.ConsumerBacklog(ctx, name)
	noErr(t, err)
	equal(t, before[name+".>"]+1, backlog[name+".>"]) // and 11
	if before[name+".>"] != 4 {                       // 7, 8, 9, 10
		t.Fatalf("backlog before the snapshot %v", before)
	}
	first := make(chan uint64, 16)
	sub2, err := to.Consume(ctx, ConsumerConfig{Stream: name, Durable: "worker", FilterSubject: name + ".>", MaxAckPending: 1, AckWait: time.Second}, func(ctx context.Context, m *Message) {
		first <- m.Seq
		_ = m.Ack(ctx)
	})
	noErr(t, err)
	defer sub2.Stop()
	select {
	case s := <-first:
		equal(t, uint64(7), s)
	case <-time.After(5 * time.Second):
		t.Fatal("the restored consumer delivered nothing")
	}
}

// TestRestoreRefusesExisting: a restore never replaces a stream.
func TestRestoreRefusesExisting(t *testing.T) {
	ctx := testCtx(t)
	n := openEmbedded(t, "")
	name := uniq(t)
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{name + ".>"}}))
	var snap StreamSnapshot
	noErr(t, n.SnapshotStream(ctx, name, func(s StreamSnapshot) error { snap = s; return nil }, func([]byte) error { return nil }))
	_, err := n.RestoreStream(ctx, snap)
	isErr(t, err, aegis.ErrConflict)

	err = n.SnapshotStream(ctx, "no_such_"+name, func(StreamSnapshot) error { return nil }, func([]byte) error { return nil })
	isErr(t, err, aegis.ErrNotFound)
}

// TestRestoreDamagedChunk: a chunk that is not the snapshot's makes no stream.
func TestRestoreDamagedChunk(t *testing.T) {
	ctx := testCtx(t)
	from := openEmbedded(t, "")
	name := uniq(t)
	noErr(t, from.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{name + ".>"}}))
	_, err := from.Publish(ctx, name+".e", []byte("x"), nil, "")
	noErr(t, err)
	c := &capturedStream{}
	noErr(t, from.SnapshotStream(ctx, name, func(s StreamSnapshot) error { c.snap = s; return nil },
		func(b []byte) error { c.chunks = append(c.chunks, bytes.Clone(b)); return nil }))

	to := openEmbedded(t, "")
	r, err := to.RestoreStream(ctx, c.snap)
	noErr(t, err)
	err = r.Write(ctx, []byte("not an archive at all, not even close"))
	if err == nil {
		err = r.Finish(ctx)
	}
	if err == nil {
		t.Fatal("a damaged snapshot was restored")
	}
	_, err = to.StreamMessage(ctx, name, 1)
	if err == nil {
		t.Fatal("the damaged restore left a stream")
	}
}
