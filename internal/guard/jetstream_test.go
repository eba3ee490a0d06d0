package guard

import (
	"context"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/jetstream"
)

// On the real bucket (per-key TTLs): a block is written, listed by another
// guard, lifted, placed again under the same id after the lift and after
// its record's TTL removed it.
func TestGuardOnJetStream(t *testing.T) {
	ctx := context.Background()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(ctx)
	bucket, err := node.Bucket(ctx, Bucket, jetstream.BucketOptions{History: 1, KeyTTLs: true})
	if err != nil {
		t.Fatal(err)
	}
	rules := []Rule{{Name: RuleBruteForce, Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 1, Window: time.Minute, Then: []Action{{ActBlockAddress, 2 * time.Second}}}}
	open := func() *Guard {
		g := New(Config{Store: bucket, Rules: rules, Refresh: time.Hour, Logger: nil})
		if err := g.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		return g
	}
	g, other := open(), open()
	block := func() {
		t.Helper()
		g.Note(AuthFailure, "192.0.2.3:1")
		g.Note(AuthFailure, "192.0.2.3:1")
		waitBlocked(t, g, "192.0.2.3")
		// Written to the store: the other guard sees it after a refresh.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if err := other.sync(ctx); err != nil {
				t.Fatal(err)
			}
			if other.Blocked("192.0.2.3") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the block never reached the other guard through the bucket")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	block()
	blocks, err := other.Blocks(ctx)
	if err != nil || len(blocks) != 1 {
		t.Fatalf("blocks = %v, %v", blocks, err)
	}
	if _, err := other.Lift(ctx, blocks[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := g.sync(ctx); err != nil || g.Blocked("192.0.2.3") {
		t.Fatalf("after the lift: blocked %v, %v", g.Blocked("192.0.2.3"), err)
	}

	// Placed again under the same id, over the lifted record.
	block()

	// Expired: enforced no more, and the record's TTL removes it.
	time.Sleep(2100 * time.Millisecond)
	if g.Blocked("192.0.2.3") || other.Blocked("192.0.2.3") {
		t.Fatal("still blocked after the block's duration")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := bucket.Keys(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired block's record is still in the bucket: %v", keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And placed again once its record is gone.
	block()
}
