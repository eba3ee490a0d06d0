package audit

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis/internal/jetstream"
)

// The chain's stream and subject.
const (
	StreamName = "AEGIS_AUDIT"
	subject    = "aegis.audit"
)

// DefaultMaxBytes bounds the stream: at it, appends are refused (and with
// them admin changes), never old records dropped.
const DefaultMaxBytes = 1 << 30

// OnJetStream ensures the append-only stream (jetstream.EnsureLedger: no
// age limit, deletes and purges refused, full refuses new) and returns it
// as a Stream. maxBytes <= 0 is DefaultMaxBytes.
func OnJetStream(ctx context.Context, node *jetstream.Node, maxBytes int64) (Stream, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := node.EnsureLedger(ctx, jetstream.LedgerConfig{Name: StreamName, Subjects: []string{subject}, MaxBytes: maxBytes}); err != nil {
		return nil, fmt.Errorf("open audit stream: %w", err)
	}
	return &jsStream{node: node}, nil
}

type jsStream struct{ node *jetstream.Node }

func (s *jsStream) Tail(ctx context.Context) (uint64, []byte, error) {
	seq, m, err := s.node.StreamLast(ctx, StreamName)
	if err != nil || m == nil {
		return seq, nil, err
	}
	return seq, m.Data, nil
}

func (s *jsStream) Append(ctx context.Context, data []byte, msgID string, after uint64) (uint64, error) {
	return s.node.PublishAfter(ctx, subject, data, msgID, after)
}

func (s *jsStream) Read(ctx context.Context, from uint64, limit int) ([]Stored, error) {
	msgs, err := s.node.StreamFrom(ctx, StreamName, from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Stored, len(msgs))
	for i, m := range msgs {
		out[i] = Stored{Seq: m.Seq, Data: m.Data}
	}
	return out, nil
}
