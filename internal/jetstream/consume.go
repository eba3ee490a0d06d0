package jetstream

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Message is a stream message. Messages from Consume can be acknowledged;
// those from StreamMessage(s) and Follow are copies and cannot.
type Message struct {
	Subject      string
	Data         []byte
	Headers      map[string]string
	Seq          uint64 // stream sequence
	NumDelivered uint64 // 1 on first delivery, counting redeliveries
	Timestamp    time.Time

	msg jetstream.Msg // nil when there is nothing to acknowledge
}

var errNotAckable = fmt.Errorf("message is not from a durable consumer: %w", aegis.ErrInvalidArgument)

// Ack marks the message processed and waits for the server to confirm, so
// a nil error means it will not be delivered again.
func (m *Message) Ack(ctx context.Context) error {
	if m.msg == nil {
		return fmt.Errorf("ack: %w", errNotAckable)
	}
	return wrap("ack", m.msg.DoubleAck(ctx))
}

// Nak asks for redelivery after delay (at once when zero).
func (m *Message) Nak(ctx context.Context, delay time.Duration) error {
	if m.msg == nil {
		return fmt.Errorf("nak: %w", errNotAckable)
	}
	if delay > 0 {
		return wrap("nak", m.msg.NakWithDelay(delay))
	}
	return wrap("nak", m.msg.Nak())
}

// Term stops redelivery of the message for good, whatever MaxDeliver says.
func (m *Message) Term(ctx context.Context) error {
	if m.msg == nil {
		return fmt.Errorf("term: %w", errNotAckable)
	}
	return wrap("term", m.msg.Term())
}

// InProgress resets the ack timer, for handlers that run longer than AckWait.
func (m *Message) InProgress(ctx context.Context) error {
	if m.msg == nil {
		return fmt.Errorf("in progress: %w", errNotAckable)
	}
	return wrap("in progress", m.msg.InProgress())
}

func consumedMessage(m jetstream.Msg, ackable bool) *Message {
	out := &Message{
		Subject: m.Subject(),
		Data:    m.Data(),
		Headers: flatHeaders(m.Headers()),
	}
	if md, err := m.Metadata(); err == nil {
		out.Seq = md.Sequence.Stream
		out.NumDelivered = md.NumDelivered
		out.Timestamp = md.Timestamp
	}
	if ackable {
		out.msg = m
	}
	return out
}

// ConsumerConfig describes a durable consumer. Zero values take defaults:
// MaxDeliver unlimited, AckWait 30s, MaxAckPending 64.
type ConsumerConfig struct {
	Stream, Durable, FilterSubject string
	// MaxDeliver caps deliveries of one message; after the last one the
	// server gives up on it (the bus dead-letters it first).
	MaxDeliver int
	// BackOff spaces redeliveries after ack timeouts; when set, MaxDeliver
	// must exceed its length.
	BackOff []time.Duration
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages, which is also how many
	// handlers run at once.
	MaxAckPending int
	// Handlers bounds this subscription's handlers running at once, and
	// so what it pulls, when that should be less than MaxAckPending: a
	// consumer shared by several servers counts MaxAckPending across all
	// of them. Zero: MaxAckPending.
	Handlers int
	// DeliverNew starts a new consumer at the end of the stream instead of
	// at its beginning.
	DeliverNew bool
	// InactiveThreshold has JetStream delete the durable consumer once no
	// server has pulled from it for that long: one whose reader is gone
	// for good (a webhook taken out of every server's flags) does not stay
	// in the stream forever. Zero keeps it until it is deleted.
	InactiveThreshold time.Duration
}

const defaultMaxAckPending = 64

// pullExpiry bounds how long one pull request waits on the server.
const pullExpiry = 5 * time.Second

// Subscription is a running Consume loop.
type Subscription struct {
	node *Node
	cc   jetstream.ConsumeContext
	cons jetstream.Consumer

	mu      sync.Mutex
	halted  bool
	stopped chan struct{} // closed by halt: no new handlers start
	wg      sync.WaitGroup

	stopOnce sync.Once
}

// Consume creates or updates the durable consumer and delivers its messages
// to handle, each in its own goroutine, at most MaxAckPending at a time.
// The handler must Ack, Nak or Term; a message it leaves alone is
// redelivered after AckWait. The loop ends with Stop or when ctx ends; the
// handler receives ctx.
func (n *Node) Consume(ctx context.Context, cfg ConsumerConfig, handle func(context.Context, *Message)) (*Subscription, error) {
	op := fmt.Sprintf("consume %s/%s", cfg.Stream, cfg.Durable)
	if cfg.Stream == "" || cfg.Durable == "" || handle == nil {
		return nil, fmt.Errorf("%s: stream, durable name and handler are required: %w", op, aegis.ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	maxPending := cfg.MaxAckPending
	if maxPending <= 0 {
		maxPending = defaultMaxAckPending
	}
	cc := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		FilterSubject: cfg.FilterSubject,
		MaxDeliver:    cfg.MaxDeliver,
		BackOff:       cfg.BackOff,
		AckWait:       cfg.AckWait,
		MaxAckPending: maxPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// A pull consumer counts as active while pulls are waiting, so a
		// running subscription never reaches the threshold.
		InactiveThreshold: cfg.InactiveThreshold,
	}
	if cfg.MaxDeliver <= 0 {
		cc.MaxDeliver = -1
	}
	if cfg.DeliverNew {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	// Every server of a cluster creates the same durable consumer at once
	// (a deploy reaching them all): retried like a store's creation.
	var cons jetstream.Consumer
	err := retryStoreCreate(ctx, func(ctx context.Context) (err error) {
		cons, err = n.js.CreateOrUpdateConsumer(ctx, cfg.Stream, cc)
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}

	handlers := maxPending
	if cfg.Handlers > 0 && cfg.Handlers < maxPending {
		handlers = cfg.Handlers
	}
	s := &Subscription{node: n, cons: cons, stopped: make(chan struct{})}
	sem := make(chan struct{}, handlers)
	log := n.log.With(logkey.Stream, cfg.Stream, logkey.Consumer, cfg.Durable)

	dispatch := func(m jetstream.Msg) {
		// Block the delivery goroutine while all handler slots are busy,
		// so the client buffers no more than the server lets through.
		select {
		case sem <- struct{}{}:
		case <-s.stopped:
			_ = m.Nak() // hand it back now rather than after AckWait
			return
		}
		s.mu.Lock()
		if s.halted {
			s.mu.Unlock()
			<-sem
			_ = m.Nak()
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			msg := consumedMessage(m, true)
			defer func() {
				// A handler bug must not take the platform down; the message
				// goes back for another attempt, bounded by MaxDeliver.
				if r := recover(); r != nil {
					log.Error("consumer handler panicked", logkey.Seq, msg.Seq, logkey.Panic, r, logkey.Stack, string(debug.Stack()))
					_ = m.Nak()
				}
			}()
			handle(ctx, msg)
		}()
	}
	// Pull no more than can be handled at once: a message waiting in a
	// client buffer is already running down its AckWait.
	// A short pull expiry keeps heartbeats frequent (half the expiry): when
	// a busy machine delays a pull response, the client notices within
	// seconds and pulls again, instead of stalling for the default 30 s.
	s.cc, err = cons.Consume(dispatch,
		jetstream.PullMaxMessages(handlers),
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn("consume error", logkey.Error, err)
		}))
	if err != nil {
		return nil, wrap(op, err)
	}

	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		s.Stop()
		return nil, fmt.Errorf("%s: node closed: %w", op, aegis.ErrUnavailable)
	}
	n.subs[s] = struct{}{}
	n.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
			s.Stop()
		case <-s.stopped:
		}
	}()
	return s, nil
}

// Pending is how many messages of the stream match the consumer's filter
// and have not been delivered to it yet (the server's NumPending).
func (s *Subscription) Pending(ctx context.Context) (uint64, error) {
	info, err := s.cons.Info(ctx)
	if err != nil {
		return 0, wrap("consumer info", err)
	}
	return info.NumPending, nil
}

// Stop ends delivery and waits for handlers already running to return.
// It is safe to call more than once, but not from a handler, which would
// wait for itself.
func (s *Subscription) Stop() {
	s.halt()
	_ = s.wait(context.Background())
}

// halt stops delivery without waiting, so Close can halt every subscription
// before waiting on any of them.
func (s *Subscription) halt() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.halted = true
		close(s.stopped)
		s.mu.Unlock()
		s.cc.Stop()
		s.node.mu.Lock()
		delete(s.node.subs, s)
		s.node.mu.Unlock()
	})
}

func (s *Subscription) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		<-s.cc.Closed()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Follow delivers the last lastN messages matching filterSubject ("" for
// all), then new ones as they arrive, until ctx ends; it then returns nil.
// It uses an ordered ephemeral consumer: nothing is acknowledged and nothing
// remains on the server afterwards. fn runs on one goroutine, in order.
func (n *Node) Follow(ctx context.Context, stream, filterSubject string, lastN int, fn func(*Message)) error {
	op := "follow " + stream
	s, err := n.stream(ctx, op, stream)
	if err != nil {
		return err
	}
	oc := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
		// The consumer is deleted when Follow returns; this only cleans up
		// after a process that died while following.
		InactiveThreshold: time.Minute,
	}
	if filterSubject != "" {
		oc.FilterSubjects = []string{filterSubject}
	}
	var skip uint64
	if lastN > 0 {
		start, sk, err := n.tailStart(ctx, s, filterSubject, uint64(lastN))
		if err != nil {
			n.forgetStream(stream, err)
			return wrap(op, err)
		}
		oc.DeliverPolicy, oc.OptStartSeq, skip = jetstream.DeliverByStartSequencePolicy, start, sk
	}
	cons, err := s.OrderedConsumer(ctx, oc)
	if err != nil {
		return wrap(op, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if skip > 0 {
			skip--
			return
		}
		fn(consumedMessage(m, false))
	})
	if err != nil {
		return wrap(op, err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
		// Ordered consumers are not deleted on Stop; a follower that comes
		// and goes (a CLI tailing logs) would leave one behind each time.
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
			defer cancel()
			if err := s.DeleteConsumer(dctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				n.log.Debug("delete follow consumer", logkey.Stream, stream, logkey.Error, err)
			}
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-n.closedCh:
		return fmt.Errorf("%s: connection closed: %w", op, aegis.ErrUnavailable)
	case <-cc.Closed():
		return fmt.Errorf("%s: consumer stopped: %w", op, aegis.ErrUnavailable)
	}
}

// tailStart finds where to start so that the last n messages matching
// filter are delivered. JetStream can count matches from a sequence
// (a consumer's pending count) but not walk backwards, so it probes windows
// ending at the last sequence, doubling until one holds n matches or
// reaches the first sequence. It returns the start and how many matches
// before the last n to skip.
func (n *Node) tailStart(ctx context.Context, s jetstream.Stream, filter string, want uint64) (start, skip uint64, err error) {
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return last + 1, 0, nil
	}
	for window := want; ; window *= 2 {
		start = first
		if last-first+1 > window {
			start = last - window + 1
		}
		pending, err := n.countFrom(ctx, s, filter, start)
		if err != nil {
			return 0, 0, err
		}
		if pending >= want || start == first {
			if pending > want {
				skip = pending - want
			}
			return start, skip, nil
		}
		if window > (1 << 62) {
			return first, 0, nil
		}
	}
}

// countFrom counts messages matching filter from seq on, using a short-lived
// consumer that is deleted at once.
func (n *Node) countFrom(ctx context.Context, s jetstream.Stream, filter string, seq uint64) (uint64, error) {
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 30 * time.Second, // cleans up if the delete below fails
		MemoryStorage:     true,
	})
	if err != nil {
		return 0, err
	}
	pending := cons.CachedInfo().NumPending
	if err := s.DeleteConsumer(ctx, cons.CachedInfo().Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		n.log.Warn("delete probe consumer", logkey.Error, err)
	}
	return pending, nil
}
