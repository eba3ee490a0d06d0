package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/gateway"
	"github.com/aegis-platform/aegis/internal/jetstream"
)

// The queue of accepted asynchronous invocations: a work-queue stream, so
// an invocation is kept until a server acknowledges its result, and one
// durable consumer every server shares, so each is handed to one server at
// a time and, when that server dies, to another (gateway/queue.go).
const (
	asyncStream   = "AEGIS_ASYNC"
	asyncPrefix   = "aegis.async." // aegis.async.<app>
	asyncConsumer = "async"
	// asyncMaxBytes bounds the queue on disk: full, it refuses new
	// invocations (503) rather than drop queued ones.
	asyncMaxBytes = 1 << 30
	// asyncAckPending bounds invocations handed out and not acknowledged
	// across all servers; each server takes at most its own async bound
	// of them (Handlers), so this only has to exceed their sum.
	asyncAckPending = 16 * 1024
)

// asyncQueue is the gateway's AsyncQueue on JetStream.
type asyncQueue struct{ node *jetstream.Node }

func openAsyncQueue(ctx context.Context, node *jetstream.Node) (*asyncQueue, error) {
	err := node.EnsureStream(ctx, jetstream.StreamConfig{
		Name: asyncStream, Subjects: []string{asyncPrefix + ">"},
		MaxAge: gateway.QueueMaxAge, MaxBytes: asyncMaxBytes, DiscardNew: true, WorkQueue: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open async queue: %w", err)
	}
	return &asyncQueue{node: node}, nil
}

func (q *asyncQueue) Enqueue(ctx context.Context, app, id string, data []byte, headers map[string]string) error {
	_, err := q.node.Publish(ctx, asyncPrefix+app, data, headers, id)
	return err
}

func (q *asyncQueue) Consume(ctx context.Context, handlers int, handle func(context.Context, gateway.QueuedInvocation)) (func(), error) {
	sub, err := q.node.Consume(ctx, jetstream.ConsumerConfig{
		Stream: asyncStream, Durable: asyncConsumer, AckWait: gateway.QueueAckWait,
		MaxAckPending: max(asyncAckPending, handlers), Handlers: handlers,
	}, func(ctx context.Context, m *jetstream.Message) { handle(ctx, queued{m}) })
	if err != nil {
		return nil, err
	}
	return sub.Stop, nil
}

// queued is a delivery from the queue as the gateway reads it.
type queued struct{ m *jetstream.Message }

func (d queued) App() string                    { return strings.TrimPrefix(d.m.Subject, asyncPrefix) }
func (d queued) Data() []byte                   { return d.m.Data }
func (d queued) Header(k string) string         { return d.m.Headers[k] }
func (d queued) Attempt() int                   { return int(d.m.NumDelivered) }
func (d queued) Ack(ctx context.Context) error  { return d.m.Ack(ctx) }
func (d queued) Term(ctx context.Context) error { return d.m.Term(ctx) }
func (d queued) InProgress(ctx context.Context) error {
	return d.m.InProgress(ctx)
}
func (d queued) Nak(ctx context.Context, delay time.Duration) error {
	return d.m.Nak(ctx, delay)
}
