package bus

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// A signature proves where an event comes from, not that it is new: a
// genuine event read off NATS and published again verifies as well as
// the first time. Three layers make each event run once per trigger:
//
//  1. The event id is the message's Nats-Msg-Id, so JetStream drops a
//     copy published within DedupeWindow of the original. A delivered
//     message whose Nats-Msg-Id is not its signed id was published by
//     someone else than the bus, and is refused.
//  2. A message whose stream time is more than FreshnessWindow from the
//     time in its envelope is refused as stale: a copy published after
//     the de-duplication window has passed cannot be fresh.
//  3. Each trigger keeps a replay record per event id in the key-value
//     bucket aegis_events_seen, shared by every server on the NATS: the
//     first delivery creates it with the message's stream sequence, a
//     redelivery of the same message (a retry) finds its own sequence, and
//     any other message with that id is a copy. A record lives for the
//     de-duplication window plus the longest retry schedule of its trigger.
//
// A refused copy is dropped, not dead-lettered (replaying it would only
// run it again), with a security log line.
const (
	// DedupeWindow is the event stream's de-duplication window.
	DedupeWindow = 5 * time.Minute
	// FreshnessWindow bounds the distance between a message's stream time
	// and its signed time. DedupeWindow − FreshnessWindow is the clock
	// skew tolerated between the servers that sign events and NATS.
	FreshnessWindow = 2 * time.Minute

	seenBucket = "aegis_events_seen"

	// maxAttempts and maxAckWait are the manifest's highest max_attempts
	// and a function's longest timeout plus the consumer's margin: they
	// bound every trigger's retry schedule, so the bucket's own TTL.
	maxAttempts = 100
	maxAckWait  = 5*time.Minute + ackMargin
)

// Reasons a copy of an event is refused.
var (
	errReplayed = errors.New("event id already delivered")
	errStale    = errors.New("stale event")
	errMsgID    = errors.New("message id is not the event id")
	errNoID     = errors.New("event without id (signature v1)")
)

// ErrForgedDeadLetter: a dead letter whose envelope does not verify never
// was a genuine event, and replaying it would sign it for the first time.
var ErrForgedDeadLetter = errors.New("its signature does not verify, so it is not a genuine event and cannot be replayed")

// SeenStore keeps the replay records; *jetstream.Bucket opened with
// KeyTTLs is one.
type SeenStore interface {
	CreateTTL(ctx context.Context, key string, v []byte, ttl time.Duration) (uint64, error)
	Get(ctx context.Context, key string) ([]byte, uint64, error)
}

// openSeen opens the replay records' bucket. Its TTL is the longest any
// trigger needs; each record carries its own trigger's.
func openSeen(ctx context.Context, n *jetstream.Node, retryMax time.Duration) (*jetstream.Bucket, error) {
	return n.Bucket(ctx, seenBucket, jetstream.BucketOptions{
		TTL: recordTTL(maxAttempts, retryMax, maxAckWait), KeyTTLs: true,
		Description: "ids of delivered events, per trigger",
	})
}

// recordTTL is the de-duplication window plus the longest retry schedule
// of a trigger: each attempt may wait its whole ack wait, then the longest
// backoff (RetryMax plus half of it in jitter).
func recordTTL(attempts int, retryMax, ackWait time.Duration) time.Duration {
	return DedupeWindow + time.Duration(attempts)*(retryMax+retryMax/2+ackWait)
}

// checkFresh refuses a copy JetStream's de-duplication cannot have seen:
// one published under another message id, or later than the window.
func checkFresh(env Envelope, m *jetstream.Message) error {
	if m.Headers[jetstream.HeaderMsgID] != env.ID {
		return errMsgID
	}
	if d := m.Timestamp.Sub(env.Time); d > FreshnessWindow || d < -FreshnessWindow {
		return errStale
	}
	return nil
}

// firstDelivery reports (nil) whether this message may run for trigger d:
// it holds the replay record of its event id, or it is a redelivery of the
// message that does. errReplayed for a copy; any other error means the
// record could not be read or written, and the event waits (fail closed).
func (b *Bus) firstDelivery(ctx context.Context, d desired, m *jetstream.Message, env Envelope) error {
	key := d.durable + "." + env.ID
	seq := strconv.FormatUint(m.Seq, 10)
	ttl := recordTTL(d.maxAttempts, b.cfg.RetryMax, d.ackWait)
	for range 2 {
		_, err := b.seen.CreateTTL(ctx, key, []byte(seq), ttl)
		if err == nil {
			return nil
		}
		if !errors.Is(err, aegis.ErrConflict) {
			return err
		}
		v, _, err := b.seen.Get(ctx, key)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // expired in between: create it again
		}
		if err != nil {
			return err
		}
		if string(v) == seq {
			return nil // a retry of the message that holds the record
		}
		return errReplayed
	}
	return errReplayed
}

// refuseCopy drops a copy of an event with a security log line. Nothing
// is dead-lettered: the original was, or will be, delivered.
func (b *Bus) refuseCopy(ctx context.Context, d desired, m *jetstream.Message, env Envelope, reason error) {
	reqID := env.RequestID
	if !telemetry.ValidRequestID(reqID) {
		reqID = ""
	}
	attrs := append(securityAttrs(d, m, reqID, reason), slog.String(logkey.EventID, env.ID), slog.Uint64(logkey.Seq, m.Seq))
	b.log.LogAttrs(ctx, slog.LevelWarn, "event replay refused", attrs...)
	_ = m.Term(ctx)
}

// replayID is the id a dead letter is replayed under. It is derived from
// the dead letter's place in its stream and its original id, not drawn at
// random, so two replays of one dead letter racing each other publish one
// event: the second is a duplicate to JetStream and to every trigger.
func replayID(dlqSeq uint64, orig Envelope) string {
	h := sha256.New()
	h.Write([]byte("aegis-dlq-replay"))
	h.Write(binary.BigEndian.AppendUint64(nil, dlqSeq))
	h.Write([]byte(orig.ID))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(orig.Time.UnixMilli())))
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}
