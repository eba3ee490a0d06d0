package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
)

// TestJetStreamServersNeverFork: two logs on one JetStream stream, as two
// servers on one NATS, append at once; the stream's expected-last-sequence
// check makes every record chain onto the one before, and a message cannot
// be deleted from the stream.
func TestJetStreamServersNeverFork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(context.Background())
	key := newKey(t)
	var logs []*Log
	for range 2 {
		s, err := OnJetStream(ctx, node, 0)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, openLog(t, s, key, 7))
	}
	var wg sync.WaitGroup
	for _, l := range logs {
		for i := range 15 {
			wg.Go(func() {
				if _, err := l.Append(ctx, adminRecord(i)); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	rep, err := logs[1].Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records < 31 || rep.Checkpoints == 0 {
		t.Fatalf("report %+v", rep)
	}
	if err := node.DeleteStreamMessage(ctx, StreamName, 2); err == nil {
		t.Fatal("deleting an audit record was allowed")
	}
	// A full stream refuses the next record rather than dropping old ones.
	small, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close(context.Background())
	s, err := OnJetStream(ctx, small, 4096)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, s, key, 1000)
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("a 4 KiB stream took 100 records")
		}
		if _, err := l.Append(ctx, adminRecord(i)); err != nil {
			if !errors.Is(err, aegis.ErrUnavailable) {
				t.Fatalf("full stream: %v", err)
			}
			break
		}
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Fatalf("the full chain no longer verifies: %v", err)
	}
}
