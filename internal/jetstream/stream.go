package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

// StreamConfig describes a stream of events. Zero limits mean unlimited;
// zero Duplicates means the server's default deduplication window (2m).
type StreamConfig struct {
	Name       string
	Subjects   []string
	MaxAge     time.Duration
	MaxBytes   int64
	Duplicates time.Duration
	// AsyncPersist lets the server write messages to its files in batches
	// instead of one write per message: much cheaper per message, but a
	// hard kill of the process loses what was not written yet (a few
	// milliseconds' worth). Only for data that is best effort anyway. The
	// server cannot change an existing stream's mode, so a stream created
	// without it keeps writing per message; replicated streams batch their
	// writes on their own and ignore it.
	AsyncPersist bool
	// DiscardNew makes a full stream (MaxBytes) refuse a new message, the
	// publisher getting an error wrapping aegis.ErrUnavailable, instead of
	// dropping its oldest one, which may not have been delivered yet.
	DiscardNew bool
	// AllowMsgTTL lets a publisher give a message its own age limit
	// (PublishTTL). Once on, the server never turns it off again.
	AllowMsgTTL bool
	// WorkQueue keeps a message only until a consumer acknowledges it
	// (work-queue retention): the stream is a queue of work, not a log.
	// Such a stream takes one consumer per subject. The server cannot
	// change an existing stream's retention.
	WorkQueue bool
}

// defaultListLimit caps StreamMessages when the caller gives no limit, so a
// listing cannot pull a whole stream into memory by accident.
const defaultListLimit = 1000

// EnsureStream creates the stream or updates it to cfg.
func (n *Node) EnsureStream(ctx context.Context, cfg StreamConfig) error {
	op := "ensure stream " + cfg.Name
	if cfg.Name == "" || len(cfg.Subjects) == 0 {
		return fmt.Errorf("%s: name and subjects are required: %w", op, aegis.ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return err
	}
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	var s jetstream.Stream
	err := retryStoreCreate(ctx, func(ctx context.Context) (err error) {
		persist, err := n.persistMode(ctx, cfg)
		if err != nil {
			return err
		}
		return n.placed(ctx, cfg.Name, func(ctx context.Context, replicas int) (err error) {
			s, err = n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
				Name:       cfg.Name,
				Subjects:   cfg.Subjects,
				MaxAge:     cfg.MaxAge,
				MaxBytes:   maxBytes,
				Duplicates: cfg.Duplicates,
				Storage:    storage,
				Replicas:   replicas,
				// Direct gets serve StreamMessage(s) from any replica without
				// going through the stream leader.
				AllowDirect: true,
				PersistMode: persist,
				Discard:     discardPolicy(cfg.DiscardNew),
				AllowMsgTTL: cfg.AllowMsgTTL,
				Retention:   retention(cfg.WorkQueue),
			})
			return err
		})
	})
	if err != nil {
		return wrap(op, err)
	}
	n.mu.Lock()
	n.streams[cfg.Name] = s
	n.mu.Unlock()
	return nil
}

func retention(workQueue bool) jetstream.RetentionPolicy {
	if workQueue {
		return jetstream.WorkQueuePolicy
	}
	return jetstream.LimitsPolicy
}

// persistMode is the persist mode EnsureStream asks for. An existing
// stream keeps the mode it was created with, because the server refuses an
// update that changes it; a new one is async when cfg wants it and the
// server allows it (not for replicated streams).
func (n *Node) persistMode(ctx context.Context, cfg StreamConfig) (jetstream.PersistModeType, error) {
	if !cfg.AsyncPersist {
		return jetstream.DefaultPersistMode, nil
	}
	s, err := n.js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		return s.CachedInfo().Config.PersistMode, nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return jetstream.DefaultPersistMode, fmt.Errorf("look up stream: %w", err)
	case n.replicas > 1:
		return jetstream.DefaultPersistMode, nil
	default:
		return jetstream.AsyncPersistMode, nil
	}
}

// stream returns a cached handle, looking the stream up on first use.
func (n *Node) stream(ctx context.Context, op, name string) (jetstream.Stream, error) {
	if name == "" {
		return nil, fmt.Errorf("%s: stream name required: %w", op, aegis.ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	n.mu.Lock()
	s, ok := n.streams[name]
	n.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := n.js.Stream(ctx, name)
	if err != nil {
		return nil, wrap(op, err)
	}
	n.mu.Lock()
	n.streams[name] = s
	n.mu.Unlock()
	return s, nil
}

// StreamLimits reads a stream's age and size bounds from the server (0:
// unlimited), as EnsureStream last set them.
func (n *Node) StreamLimits(ctx context.Context, name string) (maxAge time.Duration, maxBytes int64, err error) {
	const op = "stream limits"
	s, err := n.stream(ctx, op, name)
	if err != nil {
		return 0, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		n.forgetStream(name, err)
		return 0, 0, wrap(op, err)
	}
	maxBytes = info.Config.MaxBytes
	if maxBytes < 0 {
		maxBytes = 0
	}
	return info.Config.MaxAge, maxBytes, nil
}

// forgetStream drops a cached handle after the server said the stream is
// gone, so a stream created again later is looked up afresh.
func (n *Node) forgetStream(name string, err error) {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		n.mu.Lock()
		delete(n.streams, name)
		n.mu.Unlock()
	}
}

// HeaderMsgID is the header Publish sends a message id in; a consumed
// message carries it among its headers.
const HeaderMsgID = jetstream.MsgIDHeader

// Publish stores data on subject in the stream that captures it and returns
// its sequence. A non-empty msgID is sent as Nats-Msg-Id: the stream drops
// a second message with the same id inside its Duplicates window and Publish
// returns the first one's sequence, which makes retried publishes idempotent.
func (n *Node) Publish(ctx context.Context, subject string, data []byte, headers map[string]string, msgID string) (uint64, error) {
	return n.PublishTTL(ctx, subject, data, headers, msgID, 0)
}

// PublishTTL is Publish with the message's own age limit (ttl > 0) on a
// stream with AllowMsgTTL: the stream removes it after ttl even when the
// stream's MaxAge is longer. A stream full under DiscardNew refuses the
// message with an error wrapping aegis.ErrUnavailable.
func (n *Node) PublishTTL(ctx context.Context, subject string, data []byte, headers map[string]string, msgID string, ttl time.Duration) (uint64, error) {
	op := "publish " + subject
	if err := n.checkOpen(op); err != nil {
		return 0, err
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	if len(headers) > 0 {
		msg.Header = make(nats.Header, len(headers))
		for k, v := range headers {
			msg.Header.Set(k, v)
		}
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	ack, err := n.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		if streamFull(err) {
			return 0, fmt.Errorf("%s: %w: %w: %w", op, ErrStreamFull, aegis.ErrUnavailable, err)
		}
		return 0, wrap(op, err)
	}
	return ack.Sequence, nil
}

// PublishNoAck publishes data on subject without waiting for the stream to
// confirm it. It is for records that are best effort by design (function
// logs): the caller trades a confirmation round trip per record for a
// message that, in a rare failure, is lost. A stream whose subjects match
// stores it as usual.
func (n *Node) PublishNoAck(subject string, data []byte) error {
	// The operation's name is only built for an error: this runs once per
	// invocation (the function log's records).
	if n.isClosing() {
		return n.checkOpen("publish " + subject)
	}
	if err := n.nc.Publish(subject, data); err != nil {
		return wrap("publish "+subject, err)
	}
	return nil
}

// StreamMessage returns the message at seq, or aegis.ErrNotFound.
func (n *Node) StreamMessage(ctx context.Context, stream string, seq uint64) (*Message, error) {
	op := fmt.Sprintf("get message %s/%d", stream, seq)
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return nil, err
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		n.forgetStream(stream, err)
		return nil, wrap(op, err)
	}
	return rawMessage(raw), nil
}

// StreamMessages returns up to limit messages matching filterSubject ("" for
// all), oldest first. limit <= 0 means 1000. It reads by sequence and holds
// no consumer, which suits listings such as dead letters.
func (n *Node) StreamMessages(ctx context.Context, stream, filterSubject string, limit int) ([]*Message, error) {
	if filterSubject == "" {
		filterSubject = ">"
	}
	return n.readFrom(ctx, stream, filterSubject, 1, limit)
}

// readFrom returns up to limit messages matching filterSubject at or
// after sequence from, oldest first; limit <= 0 means 1000.
func (n *Node) readFrom(ctx context.Context, stream, filterSubject string, from uint64, limit int) ([]*Message, error) {
	op := "list messages " + stream
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultListLimit
	}
	out := []*Message{}
	// Each get returns the first matching message at or after seq, so
	// deleted sequences and other subjects are skipped by the server.
	for seq := from; len(out) < limit; {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filterSubject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			n.forgetStream(stream, err)
			return nil, wrap(op, err)
		}
		out = append(out, rawMessage(raw))
		seq = raw.Sequence + 1
	}
	return out, nil
}

// StreamTail returns the last n messages matching filterSubject ("" for
// all), oldest first: what a reader of a log wants, where StreamMessages,
// reading from the start, would return the oldest ones of a long stream.
func (n *Node) StreamTail(ctx context.Context, stream, filterSubject string, last int) ([]*Message, error) {
	op := "tail messages " + stream
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return nil, err
	}
	if last <= 0 {
		return []*Message{}, nil
	}
	start, skip, err := n.tailStart(ctx, s, filterSubject, uint64(last))
	if err != nil {
		n.forgetStream(stream, err)
		return nil, wrap(op, err)
	}
	if filterSubject == "" {
		filterSubject = ">"
	}
	out := make([]*Message, 0, last)
	for seq := start; len(out) < last; {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filterSubject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			n.forgetStream(stream, err)
			return nil, wrap(op, err)
		}
		seq = raw.Sequence + 1
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, rawMessage(raw))
	}
	return out, nil
}

// DeleteStreamMessage removes the message at seq, or fails with
// aegis.ErrNotFound if there is none.
func (n *Node) DeleteStreamMessage(ctx context.Context, stream string, seq uint64) error {
	op := fmt.Sprintf("delete message %s/%d", stream, seq)
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return err
	}
	err = s.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		// nats.go flattens the server's reason into text; ask whether the
		// message is there to tell "not found" from other refusals.
		if _, gerr := s.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%s: %w: %w", op, aegis.ErrNotFound, err)
		}
	}
	n.forgetStream(stream, err)
	return wrap(op, err)
}

// DeleteConsumer removes a durable consumer, or fails with aegis.ErrNotFound.
func (n *Node) DeleteConsumer(ctx context.Context, stream, durable string) error {
	op := fmt.Sprintf("delete consumer %s/%s", stream, durable)
	if err := n.checkOpen(op); err != nil {
		return err
	}
	return wrap(op, n.js.DeleteConsumer(ctx, stream, durable))
}

func rawMessage(raw *jetstream.RawStreamMsg) *Message {
	return &Message{
		Subject:   raw.Subject,
		Data:      raw.Data,
		Headers:   flatHeaders(raw.Header),
		Seq:       raw.Sequence,
		Timestamp: raw.Time,
	}
}

// flatHeaders keeps the first value of each header: the platform's headers
// are single-valued (trace id, producer, signature).
func flatHeaders(h nats.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
