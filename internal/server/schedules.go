package server

import (
	"context"

	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/schedule"
)

// scheduleTicks is where this server claims the ticks of its schedules
// (schedule.Ticks), so that each fires once across the servers sharing
// the NATS: the KV bucket schedule.TicksBucket, each claim kept
// schedule.TicksTTL. The bucket is opened at the first claim (the node
// keeps the handle), so a scheduler is built without a store call and a
// bucket that cannot be opened is a skipped run, logged, like any claim
// that fails.
type scheduleTicks struct{ node *jetstream.Node }

func (t scheduleTicks) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	b, err := t.node.Bucket(ctx, schedule.TicksBucket, jetstream.BucketOptions{History: 1, TTL: schedule.TicksTTL,
		Description: "schedule ticks claimed, so each fires on one server"})
	if err != nil {
		return 0, err
	}
	return b.Create(ctx, key, v)
}
