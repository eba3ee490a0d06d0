package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Limits bound the event stream, which every app and every server on one
// NATS shares, and each app's part of it, so that one app publishing in a
// loop can neither fill the disk nor crowd out other apps' events.
//
//   - The stream as a whole: StreamBytes and StreamAge, with JetStream's
//     discard-new policy, so a full stream refuses a new event (the
//     publisher gets an error) rather than dropping the oldest, which may
//     not have been delivered yet.
//   - An app's age: every event carries its own TTL (Nats-TTL, JetStream
//     2.11+, the stream created with AllowMsgTTL), AppAge, so an app's
//     events leave the stream after AppAge whatever the stream's MaxAge.
//   - An app's size: AppBacklog caps the events waiting for the app's
//     triggers, the sum over its consumers of the events not yet
//     delivered and those delivered and not yet acknowledged, as JetStream
//     reports them. JetStream has no per-app byte limit on a stream
//     shared by apps (MaxMsgsPerSubject counts a subject, and an app
//     publishes on many), and a backlog is what grows when an app
//     publishes faster than its triggers run. The consumers' counts are
//     read in one listing, at most once per backlogRefresh on each server
//     and cached, so a publish costs no round trip; a burst within that
//     second can overshoot the cap by what is published in it. Events on
//     a topic no trigger consumes wait for no one and are bounded only by
//     AppAge and the stream's bounds.
//
// A publish refused by either bound fails with an error wrapping
// aegis.ErrUnavailable ("event queue full"), which the publishing
// function sees as its host call's error.
type Limits struct {
	StreamBytes int64         // default DefaultStreamBytes
	StreamAge   time.Duration // default DefaultStreamAge
	AppBacklog  int           // default DefaultAppBacklog
	AppAge      time.Duration // default DefaultAppAge
}

// Default event bounds (docs/limits.md).
const (
	DefaultStreamBytes = 1 << 30
	DefaultStreamAge   = 7 * 24 * time.Hour
	DefaultAppBacklog  = 10000
	DefaultAppAge      = 24 * time.Hour
)

// backlogRefresh is how old a cached reading of the consumers' backlog
// may be.
const backlogRefresh = time.Second

func (l Limits) withDefaults() Limits {
	if l.StreamBytes <= 0 {
		l.StreamBytes = DefaultStreamBytes
	}
	if l.StreamAge <= 0 {
		l.StreamAge = DefaultStreamAge
	}
	if l.AppBacklog <= 0 {
		l.AppBacklog = DefaultAppBacklog
	}
	if l.AppAge <= 0 {
		l.AppAge = DefaultAppAge
	}
	return l
}

// backlog caches the apps' event backlogs read from the consumers.
type backlog struct {
	mu    sync.Mutex
	at    time.Time
	byApp map[string]uint64
}

// admitEvent refuses an event of app when the app's backlog is at its
// bound. A backlog that cannot be read admits the event: the stream's own
// bounds still hold, and the publish that follows fails by itself when
// JetStream is unreachable.
func (b *Bus) admitEvent(ctx context.Context, app, function, requestID string) error {
	n, err := b.appBacklog(ctx, app)
	if err != nil {
		b.log.Warn("event backlog unknown", logkey.App, app, logkey.Error, err)
		return nil
	}
	if n < uint64(b.cfg.Limits.AppBacklog) {
		return nil
	}
	b.cfg.Metrics.Backpressure(app, "", "events")
	b.log.Warn("event refused: queue full", logkey.Security, true, logkey.RequestID, requestID,
		logkey.App, app, logkey.Function, function, logkey.Reason, "event queue full",
		logkey.Queue, "events", logkey.Bound, b.cfg.Limits.AppBacklog)
	return fmt.Errorf("event queue full: %d events of app %s waiting: %w", n, app, aegis.ErrUnavailable)
}

// AdmitObjectChange refuses a put or delete of an object by c when c's
// app's event backlog is full: the store calls it before writing, so an
// object is never changed without its event.
func (b *Bus) AdmitObjectChange(ctx context.Context, c *sandbox.Caller) error {
	if err := b.admitEvent(ctx, c.App, c.Function, c.RequestID); err != nil {
		return fmt.Errorf("announce object change: %w", err)
	}
	return nil
}

// appBacklog is app's backlog as of at most backlogRefresh ago.
func (b *Bus) appBacklog(ctx context.Context, app string) (uint64, error) {
	b.backlog.mu.Lock()
	defer b.backlog.mu.Unlock()
	if b.backlog.byApp == nil || time.Since(b.backlog.at) >= backlogRefresh {
		pending, err := b.cfg.Node.ConsumerBacklog(ctx, EventStream)
		if err != nil {
			return 0, err
		}
		byApp := map[string]uint64{}
		for filter, n := range pending {
			if a := filterApp(filter); a != "" {
				byApp[a] += n
			}
		}
		b.backlog.byApp, b.backlog.at = byApp, time.Now()
	}
	return b.backlog.byApp[app], nil
}

// filterApp is the app a consumer's filter subject belongs to
// (aegis.ev.<app>.<topic> or aegis.obj.<app>), or "".
func filterApp(filter string) string {
	if rest, ok := strings.CutPrefix(filter, eventPrefix); ok {
		app, _, _ := strings.Cut(rest, ".")
		return app
	}
	if rest, ok := strings.CutPrefix(filter, objectPrefix); ok {
		return rest
	}
	return ""
}

// publishBounded stores an event with the app's TTL; a full stream's
// refusal says "event queue full" like the app's own bound.
func (b *Bus) publishBounded(ctx context.Context, subject string, data []byte, env Envelope) error {
	_, err := b.cfg.Node.PublishTTL(ctx, subject, data, env.Headers(b.cfg.SigningKey, subject, data), env.ID, b.cfg.Limits.AppAge)
	if errors.Is(err, jetstream.ErrStreamFull) {
		return fmt.Errorf("event queue full: %w", err)
	}
	return err
}
