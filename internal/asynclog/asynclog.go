// Package asynclog puts a bounded queue in front of a slog.Handler, so a
// log line never waits for where it is written: a terminal paused by its
// user, a full pipe, a slow disk. One goroutine writes the queued records;
// when the queue is full a record is dropped and counted, and once the
// writer catches up it writes one warning saying how many were lost. The
// server's own log goes through it; function logs have their own queue
// (funclog).
package asynclog

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// DefaultSize is how many records wait for the writer before new ones are
// dropped.
const DefaultSize = 8192

// Handler is a slog.Handler that queues records for the handler it wraps.
// Handlers made from it by WithAttrs and WithGroup share its queue.
type Handler struct {
	next slog.Handler // the wrapped handler, with this Handler's attributes and groups
	q    *queue
}

type item struct {
	ctx context.Context
	h   slog.Handler
	r   slog.Record
}

type queue struct {
	base      slog.Handler // the handler New wrapped: markers carry no one's attributes
	ch        chan item
	dropped   atomic.Int64 // since New
	unmarked  atomic.Int64 // since the last marker
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New starts the writer of a queue of size records (DefaultSize when 0 or
// less) in front of next. Close stops it.
func New(next slog.Handler, size int) *Handler {
	if size <= 0 {
		size = DefaultSize
	}
	q := &queue{base: next, ch: make(chan item, size), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return &Handler{next: next, q: q}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle queues r and returns at once; it never blocks. A record that
// does not fit is dropped and counted.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	select {
	case <-h.q.stop:
		// Closed: write it here rather than lose it; nothing is queued
		// any more, so the order holds.
		return h.next.Handle(ctx, r)
	default:
	}
	// Clone: the caller may reuse the attributes' backing array.
	select {
	case h.q.ch <- item{ctx: context.WithoutCancel(ctx), h: h.next, r: r.Clone()}:
	default:
		h.q.dropped.Add(1)
		h.q.unmarked.Add(1)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), q: h.q}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), q: h.q}
}

// Dropped is how many records were dropped since New.
func (h *Handler) Dropped() int64 { return h.q.dropped.Load() }

// Close writes what is queued, and the marker of drops not yet marked,
// then stops the writer. Records handled afterwards are written at once,
// by the caller. Safe to call twice.
func (h *Handler) Close() {
	h.q.closeOnce.Do(func() {
		close(h.q.stop)
		<-h.q.done
	})
}

// DroppedMsg is the message of the marker record.
func DroppedMsg(n int64) string {
	if n == 1 {
		return "1 log record dropped"
	}
	return strconv.FormatInt(n, 10) + " log records dropped"
}

func (q *queue) run() {
	defer close(q.done)
	for {
		select {
		case it := <-q.ch:
			_ = it.h.Handle(it.ctx, it.r)
			q.mark(false)
		case <-q.stop:
			for {
				select {
				case it := <-q.ch:
					_ = it.h.Handle(it.ctx, it.r)
				default:
					q.mark(true)
					return
				}
			}
		}
	}
}

// mark writes one warning with the records dropped since the last one,
// once the queue has room again (at most half full) or at Close.
func (q *queue) mark(force bool) {
	if q.unmarked.Load() == 0 || (!force && len(q.ch) > cap(q.ch)/2) {
		return
	}
	n := q.unmarked.Swap(0)
	if n == 0 {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelWarn, DroppedMsg(n), 0)
	r.AddAttrs(slog.Int64(logkey.Dropped, n))
	_ = q.base.Handle(context.Background(), r)
}
