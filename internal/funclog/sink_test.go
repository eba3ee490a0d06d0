package funclog

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/jetstream"
)

func openNode(t *testing.T) *jetstream.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

// stuckSink holds every write until released, like a log store that has
// stopped answering, and keeps what it was finally given.
type stuckSink struct {
	release chan struct{}
	mu      sync.Mutex
	got     []Record
}

func (s *stuckSink) PublishNoAck(_ string, data []byte) error {
	<-s.release
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	s.mu.Lock()
	s.got = append(s.got, r)
	s.mu.Unlock()
	return nil
}

// A sink that never answers does not hold up Write: every call returns,
// what the queue cannot hold is counted, and once the sink answers again
// the function's log gets one marker record saying how many were lost.
func TestStuckSinkNeitherBlocksNorLosesCount(t *testing.T) {
	sink := &stuckSink{release: make(chan struct{})}
	const queue, writes = 8, 200
	l, err := Open(context.Background(), openNode(t), slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options{Sink: sink, QueueSize: queue})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range writes {
			l.Write(&Record{Level: "info", Msg: "invocation", App: "shop", Function: "orders"})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Write blocked on a stuck sink")
	}
	// The writer holds at most one record in the sink, the queue the rest.
	dropped := l.Dropped()
	if dropped < writes-queue-1 || dropped > writes-queue {
		t.Fatalf("dropped %d of %d with a queue of %d", dropped, writes, queue)
	}
	close(sink.release)
	l.Close()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var markers []Record
	for _, r := range sink.got {
		if r.Level == "warn" {
			markers = append(markers, r)
		}
	}
	if kept := int64(len(sink.got) - len(markers)); kept+dropped != writes {
		t.Errorf("sink got %d records besides markers, %d dropped: %d written", kept, dropped, writes)
	}
	if len(markers) != 1 || markers[0].Msg != DroppedMsg(dropped) || markers[0].App != "shop" || markers[0].Function != "orders" {
		t.Errorf("marker records = %+v, want one %q for shop/orders", markers, DroppedMsg(dropped))
	}
}

// Retention options apply to a stream that exists already.
func TestRetentionUpdatesAnExistingStream(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	logger := slog.New(slog.DiscardHandler)
	l, err := Open(ctx, node, logger)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	age, size, err := node.StreamLimits(ctx, Stream)
	if err != nil || age != DefaultMaxAge || size != DefaultMaxBytes {
		t.Fatalf("default limits = %v, %d, %v", age, size, err)
	}
	l, err = Open(ctx, node, logger, Options{MaxAge: time.Hour, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	age, size, err = node.StreamLimits(ctx, Stream)
	if err != nil || age != time.Hour || size != 1<<20 {
		t.Errorf("limits after reopening = %v, %d, %v; want 1h, 1MiB", age, size, err)
	}
}

func TestDroppedMsg(t *testing.T) {
	if got := DroppedMsg(1); got != "1 log record dropped" {
		t.Error(got)
	}
	if got := DroppedMsg(192); got != "192 log records dropped" {
		t.Error(got)
	}
}
