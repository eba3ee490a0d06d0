package jetstream

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func persistModeOf(t *testing.T, n *Node, name string) jetstream.PersistModeType {
	t.Helper()
	s, err := n.js.Stream(testCtx(t), name)
	noErr(t, err)
	return s.CachedInfo().Config.PersistMode
}

// An AsyncPersist stream batches its writes, keeps its messages across a
// clean restart, and can be ensured again.
func TestAsyncPersistStream(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	cfg := StreamConfig{Name: "logs", Subjects: []string{"lg.>"}, AsyncPersist: true}
	n, err := Open(ctx, Config{DataDir: dir})
	noErr(t, err)
	noErr(t, n.EnsureStream(ctx, cfg))
	equal(t, jetstream.AsyncPersistMode, persistModeOf(t, n, "logs"))
	for range 3 {
		noErr(t, n.PublishNoAck("lg.a", []byte("record")))
	}
	eventually(t, 5*time.Second, func() bool {
		msgs, err := n.StreamTail(ctx, "logs", "lg.>", 10)
		return err == nil && len(msgs) == 3
	}, "3 records stored")
	noErr(t, n.EnsureStream(ctx, cfg))
	noErr(t, n.Close(ctx))

	n, err = Open(ctx, Config{DataDir: dir})
	noErr(t, err)
	defer n.Close(context.Background())
	noErr(t, n.EnsureStream(ctx, cfg))
	msgs, err := n.StreamTail(ctx, "logs", "lg.>", 10)
	noErr(t, err)
	equal(t, 3, len(msgs))
}

// The server refuses to change a stream's persist mode, so a stream made
// before AsyncPersist was asked for keeps its mode instead of failing.
func TestAsyncPersistKeepsExistingMode(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	name := uniq(t)
	cfg := StreamConfig{Name: name, Subjects: []string{name + ".>"}}
	noErr(t, n.EnsureStream(ctx, cfg))
	cfg.AsyncPersist = true
	noErr(t, n.EnsureStream(ctx, cfg))
	equal(t, jetstream.DefaultPersistMode, persistModeOf(t, n, name))
}
