package bus

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/usage"
)

// An event whose function's budget is spent waits in its stream: it is
// handed back (nak) and delivered again after HoldRecheck, or when the
// budget's window ends if that is sooner, until the window resets or a
// deploy raises the budget. It is never dead-lettered for a budget.
//
// Every redelivery raises the message's delivery count, which is what
// attempts are counted by, so the times an event waited are kept apart:
// a record per (trigger, stream sequence) in the KV bucket
// aegis_event_holds counts them, and an event's attempt is its deliveries
// less its holds. The record is in JetStream, so the count survives a
// restart and is the same on every server that delivers the event. The
// consumer's MaxDeliver is unlimited for the same reason (deliveries are
// not attempts); handle dead-letters an event itself once its attempts
// are used up.

// errNoAttemptFinished dead-letters an event delivered more often than its
// attempts allow with none of them ending in a failure handle saw.
var errNoAttemptFinished = errors.New("delivered more often than max_attempts without an attempt finishing")

// HoldStore keeps how often each event waited for a budget.
type HoldStore interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
}

const (
	holdBucket = "aegis_event_holds"
	// HoldRecheck is the longest an event held by a budget waits before
	// it is checked again: a deploy that raises the budget releases it
	// within this time.
	HoldRecheck = 5 * time.Second
)

func openHolds(ctx context.Context, n *jetstream.Node) (*jetstream.Bucket, error) {
	// An event is kept in its stream for a week (Open), and so is the
	// count of its holds.
	return n.Bucket(ctx, holdBucket, jetstream.BucketOptions{TTL: 7 * 24 * time.Hour,
		Description: "how often each event waited for a spent budget, per trigger"})
}

func holdKey(d desired, m *jetstream.Message) string {
	return d.durable + "." + strconv.FormatUint(m.Seq, 10)
}

// holds is how often m waited for a budget. A first delivery never did,
// so it costs nothing; a record that cannot be read counts none, so the
// event is at worst dead-lettered an attempt early, never retried forever.
func (b *Bus) holds(ctx context.Context, d desired, m *jetstream.Message) int {
	if m.NumDelivered <= 1 {
		return 0
	}
	v, _, err := b.holdStore.Get(ctx, holdKey(d, m))
	if err != nil {
		if !errors.Is(err, aegis.ErrNotFound) {
			b.log.Warn("event hold count unavailable", logkey.App, d.app, logkey.Function, d.function, logkey.Seq, m.Seq, logkey.Error, err)
		}
		return 0
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 || uint64(n) >= m.NumDelivered {
		return 0
	}
	return n
}

// hold hands m back to wait for its budget, counting the wait so it is
// not an attempt.
func (b *Bus) hold(ctx context.Context, d desired, m *jetstream.Message, reqID string, held int, cause error) {
	if _, err := b.holdStore.Put(ctx, holdKey(d, m), []byte(strconv.Itoa(held+1))); err != nil {
		b.log.Warn("event hold count not written; this wait counts as an attempt", logkey.RequestID, reqID,
			logkey.App, d.app, logkey.Function, d.function, logkey.Error, err)
	}
	delay := HoldRecheck
	var ex *usage.ExhaustedError
	if errors.As(cause, &ex) {
		delay = min(delay, max(time.Until(ex.ResetsAt), 100*time.Millisecond))
	}
	if held == 0 {
		msg := "event held for budget"
		if !errors.Is(cause, usage.ErrBudgetExhausted) {
			msg = "event held for the guard" // quarantined or throttled
		}
		b.log.Info(msg, logkey.RequestID, reqID, logkey.App, d.app, logkey.Function, d.function,
			logkey.Seq, m.Seq, logkey.Error, cause)
	}
	_ = m.Nak(ctx, delay)
}
