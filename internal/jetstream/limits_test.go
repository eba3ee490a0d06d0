package jetstream

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

// TestBoundedStream: a stream made before its bounds existed takes them
// on update; a full discard-new stream refuses a publish with
// ErrStreamFull and aegis.ErrUnavailable; a message's own TTL removes it.
func TestBoundedStream(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	name := uniq(t)
	subj := "bounded." + name
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{subj + ".>"}}))
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{subj + ".>"},
		MaxBytes: 4 << 10, DiscardNew: true, AllowMsgTTL: true}))

	_, err := n.PublishTTL(ctx, subj+".short", []byte("x"), nil, "", time.Second)
	noErr(t, err)
	payload := bytes.Repeat([]byte("x"), 1<<10)
	var full error
	for range 10 {
		if _, full = n.Publish(ctx, subj+".fill", payload, nil, ""); full != nil {
			break
		}
	}
	if !errors.Is(full, ErrStreamFull) || !errors.Is(full, aegis.ErrUnavailable) {
		t.Fatalf("publish into a full stream: %v, want ErrStreamFull and aegis.ErrUnavailable", full)
	}
	eventually(t, 5*time.Second, func() bool {
		msgs, err := n.StreamMessages(ctx, name, subj+".short", 0)
		return err == nil && len(msgs) == 0
	}, "the message with a 1s TTL removed")
}

// TestConsumerBacklog counts what each consumer has yet to deliver or to
// see acknowledged, by filter subject.
func TestConsumerBacklog(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	name := uniq(t)
	subj := "backlog." + name
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{subj + ".>"}}))
	hold := make(chan struct{})
	sub, err := n.Consume(context.Background(), ConsumerConfig{Stream: name, Durable: "slow", FilterSubject: subj + ".a",
		MaxDeliver: 2, AckWait: time.Minute, MaxAckPending: 1, DeliverNew: true},
		func(ctx context.Context, m *Message) { <-hold })
	noErr(t, err)
	defer sub.Stop()
	defer close(hold) // before Stop, which waits for the handler
	for range 3 {
		_, err := n.Publish(ctx, subj+".a", []byte("x"), nil, "")
		noErr(t, err)
	}
	_, err = n.Publish(ctx, subj+".b", []byte("x"), nil, "") // no consumer
	noErr(t, err)
	eventually(t, 5*time.Second, func() bool {
		got, err := n.ConsumerBacklog(ctx, name)
		return err == nil && got[subj+".a"] == 3 && len(got) == 1
	}, "a backlog of 3 on the one consumer's subject")
}

// TestInactiveConsumerRemoved: a durable consumer with an inactive
// threshold stays while it is consumed and is deleted by JetStream once
// nothing pulls from it for that long.
func TestInactiveConsumerRemoved(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	name := uniq(t)
	subj := "inactive." + name
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{subj + ".>"}}))
	sub, err := n.Consume(context.Background(), ConsumerConfig{Stream: name, Durable: "gone", FilterSubject: subj + ".a",
		InactiveThreshold: time.Second}, func(ctx context.Context, m *Message) { _ = m.Ack(ctx) })
	noErr(t, err)
	present := func() bool {
		backlog, err := n.ConsumerBacklog(ctx, name)
		noErr(t, err)
		_, ok := backlog[subj+".a"]
		return ok
	}
	time.Sleep(2500 * time.Millisecond) // past the threshold, still consuming
	if !present() {
		t.Fatal("a consumer being pulled from was deleted as inactive")
	}
	sub.Stop()
	eventually(t, 8*time.Second, func() bool { return !present() }, "the consumer nobody pulls from deleted")
}
