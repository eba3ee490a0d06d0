package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

// LedgerConfig describes an append-only stream: a record once written is
// never removed by the stream itself. There is no age limit, deleting a
// message or purging the stream through the API is refused (and cannot be
// allowed again later: the server refuses to lift either), and a full
// stream (MaxBytes) refuses the new record instead of dropping the oldest.
type LedgerConfig struct {
	Name     string
	Subjects []string
	MaxBytes int64 // required: the bound at which appends are refused
}

// EnsureLedger creates the append-only stream cfg describes, or updates it.
func (n *Node) EnsureLedger(ctx context.Context, cfg LedgerConfig) error {
	op := "ensure ledger " + cfg.Name
	if cfg.Name == "" || len(cfg.Subjects) == 0 || cfg.MaxBytes <= 0 {
		return fmt.Errorf("%s: name, subjects and a byte bound are required: %w", op, aegis.ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return err
	}
	var s jetstream.Stream
	err := retryStoreCreate(ctx, func(ctx context.Context) (err error) {
		s, err = n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Name,
			Subjects:    cfg.Subjects,
			MaxBytes:    cfg.MaxBytes,
			Storage:     storage,
			Replicas:    n.replicas,
			AllowDirect: true,
			Discard:     jetstream.DiscardNew,
			DenyDelete:  true,
			DenyPurge:   true,
		})
		return err
	})
	if err != nil {
		return wrap(op, err)
	}
	n.mu.Lock()
	n.streams[cfg.Name] = s
	n.mu.Unlock()
	return nil
}

// PublishAfter stores data on subject only if the stream's last sequence
// is still last (JetStream's expected-last-sequence check; 0 for an empty
// stream) and returns the new message's sequence. When another writer got
// there first the error wraps aegis.ErrConflict: read the tail again and
// retry. A stream full under DiscardNew refuses with aegis.ErrUnavailable.
// msgID (when set) deduplicates a retried publish of the same message.
func (n *Node) PublishAfter(ctx context.Context, subject string, data []byte, msgID string, last uint64) (uint64, error) {
	op := "publish " + subject
	if err := n.checkOpen(op); err != nil {
		return 0, err
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequence(last)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := n.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, opts...)
	if err != nil {
		if streamFull(err) {
			return 0, fmt.Errorf("%s: %w: %w: %w", op, ErrStreamFull, aegis.ErrUnavailable, err)
		}
		return 0, wrap(op, err)
	}
	return ack.Sequence, nil
}

// StreamLast returns the stream's last sequence (which stays where it was
// when the message there is deleted) and the last message still stored,
// nil when the stream holds none.
func (n *Node) StreamLast(ctx context.Context, stream string) (uint64, *Message, error) {
	op := "read the tail of " + stream
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return 0, nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		n.forgetStream(stream, err)
		return 0, nil, wrap(op, err)
	}
	st := info.State
	if st.Msgs == 0 {
		return st.LastSeq, nil, nil
	}
	// The last stored message: the last sequence itself, or, when that
	// one was removed, the nearest before it.
	for seq := st.LastSeq; seq >= st.FirstSeq && seq > 0; seq-- {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, nil, wrap(op, err)
		}
		return st.LastSeq, rawMessage(raw), nil
	}
	return st.LastSeq, nil, nil
}

// StreamFrom returns up to limit messages at or after sequence from (1 for
// the start), oldest first, for a reader that pages through a stream.
func (n *Node) StreamFrom(ctx context.Context, stream string, from uint64, limit int) ([]*Message, error) {
	return n.readFrom(ctx, stream, ">", max(from, 1), limit)
}
