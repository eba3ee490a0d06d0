// Package alert owns the guard's alerts once the guard has raised them:
// the record every server shares (the JetStream stream AEGIS_ALERTS), its
// listing and following for the admin API, and their delivery to the
// webhooks an operator sets (webhook.go), each alert signed like the
// webhooks Aegis accepts and POSTed once across every server sharing the
// NATS. It decides nothing: which incidents deserve an alert is the
// guard's. It never logs the webhooks' signing secret, nor a webhook's
// path or query, which often carry a token of their own.
package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/strictjson"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// The stream of alerts and its one subject.
const (
	Stream  = "AEGIS_ALERTS"
	Subject = "aegis.alerts"
)

// The stream's bounds. Alerts are one per incident, so these hold far
// more than an operator reads: at 30 days the oldest go, and so they do
// when the stream reaches MaxBytes (tens of thousands of alerts), so an
// attacker who triggers incidents by the thousand cannot grow it without
// bound. The stream drops its oldest alert rather than refuse a new one.
const (
	MaxAge   = 30 * 24 * time.Hour
	MaxBytes = 64 << 20
	// MaxRecord bounds one alert's JSON: the guard's alerts are a few
	// hundred bytes; one larger is refused rather than stored.
	MaxRecord = 16 << 10
	// maxIDLen bounds an alert's id, which travels in a header.
	maxIDLen = 128
)

// The listing's bounds (List, Follow): DefaultLimit alerts when the caller
// names no limit, never more than MaxLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// duplicates is how long the stream remembers an alert's id, so that a
// publish retried after a lost acknowledgement stores the alert once.
const duplicates = 2 * time.Minute

// Log is the shared record of alerts on a JetStream node.
type Log struct {
	node *jetstream.Node
	log  *slog.Logger
}

// Open ensures the alert stream on node (creating it or updating its
// bounds) and returns the record. logger (nil: none) hears of records
// that cannot be read back.
func Open(ctx context.Context, node *jetstream.Node, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	err := node.EnsureStream(ctx, jetstream.StreamConfig{Name: Stream, Subjects: []string{Subject},
		MaxAge: MaxAge, MaxBytes: MaxBytes, Duplicates: duplicates})
	if err != nil {
		return nil, fmt.Errorf("open alert stream: %w", err)
	}
	return &Log{node: node, log: logger}, nil
}

// Publish stores a and returns once the stream has it; the webhooks'
// consumers deliver it from there. The alert's id deduplicates a retried
// publish.
func (l *Log) Publish(ctx context.Context, a guard.Alert) error {
	if err := checkID(a.ID); err != nil {
		return fmt.Errorf("publish alert: %w", err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	if len(b) > MaxRecord {
		return fmt.Errorf("publish alert %s: %d bytes, more than %d: %w", a.ID, len(b), MaxRecord, aegis.ErrLimitExceeded)
	}
	if _, err := l.node.Publish(ctx, Subject, b, nil, a.ID); err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	return nil
}

// checkID refuses an id that could not travel in a header as it is.
func checkID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("alert id must be 1 to %d characters: %w", maxIDLen, aegis.ErrInvalidArgument)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("alert id %q: only printable ASCII without spaces: %w", id, aegis.ErrInvalidArgument)
		}
	}
	return nil
}

// limitOf is limit within the listing's bounds.
func limitOf(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}

// List returns the newest limit alerts (DefaultLimit when limit <= 0, at
// most MaxLimit) raised at or after since, oldest first.
func (l *Log) List(ctx context.Context, since time.Time, limit int) ([]guard.Alert, error) {
	// The tail, then the time: the newest are the ones asked for, and the
	// stream is in the order alerts were raised.
	msgs, err := l.node.StreamTail(ctx, Stream, Subject, limitOf(limit))
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	out := make([]guard.Alert, 0, len(msgs))
	for _, m := range msgs {
		a, ok := l.read(m)
		if ok && !a.Time.Before(since) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Follow hands fn the newest limit alerts raised at or after since, as
// List would, then every new alert as it is raised, in order, until ctx
// ends (it then returns nil) or fn fails (it returns fn's error).
func (l *Log) Follow(ctx context.Context, since time.Time, limit int, fn func(guard.Alert) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// fn runs on the stream's goroutine; its error is handed back under
	// a lock, read once Follow has returned.
	var (
		mu   sync.Mutex
		ferr error
	)
	err := l.node.Follow(ctx, Stream, Subject, limitOf(limit), func(m *jetstream.Message) {
		mu.Lock()
		failed := ferr != nil
		mu.Unlock()
		if failed {
			return
		}
		a, ok := l.read(m)
		if !ok || a.Time.Before(since) {
			return
		}
		if err := fn(a); err != nil {
			mu.Lock()
			ferr = err
			mu.Unlock()
			cancel()
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if ferr != nil {
		return ferr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("follow alerts: %w", err)
	}
	return nil
}

// read decodes a stored alert strictly. One that does not decode was not
// written by Publish: it is skipped, and said so, never handed on.
func (l *Log) read(m *jetstream.Message) (guard.Alert, bool) {
	a, err := decode(m.Data)
	if err != nil {
		l.log.Warn("unreadable alert record skipped", logkey.Stream, Stream, logkey.Seq, m.Seq, logkey.Error, err)
		return guard.Alert{}, false
	}
	return a, true
}

// decode reads one alert record: one JSON object of guard.Alert's fields
// and no other, within MaxRecord, with an id Publish would accept.
func decode(b []byte) (guard.Alert, error) {
	var a guard.Alert
	if len(b) > MaxRecord {
		return a, fmt.Errorf("decode alert: %d bytes, more than %d", len(b), MaxRecord)
	}
	if err := strictjson.Unmarshal(b, &a); err != nil {
		return guard.Alert{}, fmt.Errorf("decode alert: %w", err)
	}
	if err := checkID(a.ID); err != nil {
		return guard.Alert{}, fmt.Errorf("decode alert: %w", err)
	}
	return a, nil
}
