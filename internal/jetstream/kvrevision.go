package jetstream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// LastRevision is the revision of the latest write or delete of any key
// of the bucket (0 for a bucket never written): it grows with every
// change, whoever makes it, so a reader that polls it knows when to read
// the keys again and does one request when nothing changed
// (registry.Follow reads the app records only then).
func (b *Bucket) LastRevision(ctx context.Context) (uint64, error) {
	op := "read the last revision of " + b.name
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st, err := b.kv.Status(ctx)
	if err != nil {
		return 0, wrap(op, err)
	}
	js, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || js.StreamInfo() == nil {
		return 0, fmt.Errorf("%s: the bucket's status has no stream state", op)
	}
	return js.StreamInfo().State.LastSeq, nil
}
