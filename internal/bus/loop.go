package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// A function whose event, directly or through others, triggers itself
// runs until something stops it; on a public cloud that is the bill. The
// hop limit stops every chain: the event past it is dead-lettered with the
// path of functions that led there, so the developer sees the loop
// ("a → b → a → …") rather than a count. A loop that fans out stops on
// many branches at once; the alert is raised once per chain (per request
// id), whichever server stops it first, through a create-only record in
// the bucket the replay records live in.

// loopAlertTTL is how long a chain's alert record is kept: longer than a
// chain of 16 hops takes to reach its limit unless its events wait out
// many retries, and within the replay bucket's own age limit.
const loopAlertTTL = time.Hour

// loopPath names the functions of a stopped chain, the one the event was
// for last: "a → b → a → … (17 hops)". The envelope keeps the latest
// sandbox.MaxChain names; an ellipsis marks a cut.
func loopPath(env Envelope, function string) string {
	var b strings.Builder
	if env.Hop > len(env.Path) {
		b.WriteString("… → ")
	}
	for _, fn := range env.Path {
		b.WriteString(fn)
		b.WriteString(" → ")
	}
	b.WriteString(function)
	fmt.Fprintf(&b, " (%d hops)", env.Hop)
	return b.String()
}

// stopLoop dead-letters an event past the hop limit with a reason naming
// its path, and raises the chain's alert if no server has yet.
func (b *Bus) stopLoop(ctx context.Context, d desired, m *jetstream.Message, reqID string, env Envelope) {
	path := loopPath(env, d.function)
	reason := fmt.Errorf("%w: %s", errHopLimit, path)
	if b.firstLoopAlert(ctx, d.app, reqID) {
		b.log.LogAttrs(ctx, slog.LevelError, "event loop stopped at the hop limit",
			slog.Bool(logkey.Security, true), slog.Bool(logkey.Alert, true),
			slog.String(logkey.App, d.app), slog.String(logkey.Function, d.function),
			slog.String(logkey.RequestID, reqID), slog.String(logkey.Path, path),
			slog.Int(logkey.Hop, env.Hop), slog.String(logkey.Origin, env.Origin))
	}
	b.cfg.Guard.Observe(guard.Event{Signal: guard.HopLimit, App: d.app, Function: d.function})
	b.deadLetter(ctx, d, m, reqID, int(m.NumDelivered), reason, metrics.DeadLetterHopLimit)
}

// firstLoopAlert reports whether this is the first stop of the chain
// reqID. When the record cannot be written or read, it alerts: a
// duplicate alert is better than none.
func (b *Bus) firstLoopAlert(ctx context.Context, app, reqID string) bool {
	sum := sha256.Sum256([]byte(app + "\x00" + reqID))
	key := "loop." + hex.EncodeToString(sum[:16])
	_, err := b.seen.CreateTTL(ctx, key, []byte(reqID), loopAlertTTL)
	return !errors.Is(err, aegis.ErrConflict)
}
