package auth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
)

// usedPrefix keys the last-used times: used.<id> → RFC 3339 time. They live
// apart from the key records so that writing one can never race with, and
// undo, a revocation or a rotation of the record.
const usedPrefix = "used."

// usage is what this node last wrote as a key's last-used time.
type usage struct {
	written atomic.Int64 // unix nanoseconds; 0 before the first write
}

// noteUse records that key id verified at now. The store is written at most
// once per lastUsedSpacing per key and never by the caller: a background
// write, owned by k and awaited by Close, does it. So last-used times are
// accurate to about a minute, per node.
func (k *Keys) noteUse(id string, now time.Time) {
	v, ok := k.usage.Load(id)
	if !ok {
		v, _ = k.usage.LoadOrStore(id, new(usage))
	}
	u := v.(*usage)
	last, at := u.written.Load(), now.UnixNano()
	if last != 0 && at-last < int64(lastUsedSpacing) {
		return
	}
	if !u.written.CompareAndSwap(last, at) {
		return // another request is writing it
	}
	k.bgMu.Lock()
	defer k.bgMu.Unlock()
	if k.closed {
		return
	}
	k.bg.Add(1)
	go func() {
		defer k.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Best effort: a failed write only leaves an older last-used
		// time, which the next use a minute on corrects.
		_, _ = k.store.Put(ctx, usedPrefix+id, []byte(now.UTC().Format(time.RFC3339Nano)))
	}()
}

// lastUsed reads key id's last-used time; nil when it was never used.
func (k *Keys) lastUsed(ctx context.Context, id string) (*time.Time, error) {
	b, _, err := k.store.Get(ctx, usedPrefix+id)
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last use: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return nil, nil // a damaged note is not worth failing a listing for
	}
	return &t, nil
}

// Close waits for pending last-used writes and stops new ones. Keys still
// verify after Close; only their use is no longer recorded. It is safe to
// call more than once.
func (k *Keys) Close() {
	k.bgMu.Lock()
	k.closed = true
	k.bgMu.Unlock()
	k.bg.Wait()
}
