package jetstream

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamFull is in the chain of a publish refused because the stream is
// at its bound (DiscardNew), beside aegis.ErrUnavailable.
var ErrStreamFull = errors.New("stream full")

// codeStoreFailed is the API error a stream answers a publish it could
// not store with; under DiscardNew, a full stream says "maximum bytes
// exceeded" or "maximum messages exceeded" with it.
const codeStoreFailed jetstream.ErrorCode = 10077

func discardPolicy(discardNew bool) jetstream.DiscardPolicy {
	if discardNew {
		return jetstream.DiscardNew
	}
	return jetstream.DiscardOld
}

// streamFull reports a publish refused because the stream is at its
// MaxBytes or MaxMsgs bound.
func streamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != codeStoreFailed {
		return false
	}
	d := strings.ToLower(apiErr.Description)
	return strings.Contains(d, "maximum bytes") || strings.Contains(d, "maximum messages")
}

// ConsumerBacklog returns, for every consumer of stream, the messages it
// has yet to deliver plus those delivered and not yet acknowledged, keyed
// by the consumer's filter subject (summed when consumers share one). One
// listing answers for every consumer, so a caller can cache it.
func (n *Node) ConsumerBacklog(ctx context.Context, stream string) (map[string]uint64, error) {
	op := "consumer backlog of " + stream
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		pending := info.NumPending + uint64(max(info.NumAckPending, 0))
		filters := info.Config.FilterSubjects
		if info.Config.FilterSubject != "" {
			filters = append(filters, info.Config.FilterSubject)
		}
		for _, f := range filters {
			out[f] += pending
		}
	}
	if err := list.Err(); err != nil {
		n.forgetStream(stream, err)
		return nil, wrap(op, err)
	}
	return out, nil
}
