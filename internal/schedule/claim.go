package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	cron "github.com/netresearch/go-cron"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Ticks is where the servers sharing one NATS claim the ticks of their
// schedules: a key-value store where a create succeeds for one caller and
// fails with aegis.ErrConflict for every other (a JetStream KV bucket the
// server opens, TicksBucket). Its keys must outlive the clocks of the
// servers disagreeing and a run starting late: TicksTTL.
type Ticks interface {
	Create(ctx context.Context, key string, v []byte) (uint64, error)
}

// TicksBucket is the KV bucket the server keeps the claims in.
const TicksBucket = "aegis_schedule_ticks"

// TicksTTL is how long a claim is kept: long enough for the last server to
// reach a tick to find it claimed, with clocks a little apart (NTP keeps
// them within milliseconds) and a run started late by a busy server;
// short enough that the bucket holds only the last few minutes of ticks.
const TicksTTL = 5 * time.Minute

// claimTimeout bounds one claim: a run waits for it.
const claimTimeout = 5 * time.Second

// claim reports whether this server runs r's tick due at or just before
// now: it creates the tick's key, and only the server whose create
// succeeds runs it.
//
// A claim that cannot be made (JetStream unreachable, no quorum) skips the
// run: it fails closed. A skipped run is what a schedule already does when
// no server is up or a budget is spent, and the next tick fires as usual;
// a run made twice (an email sent twice, a report filed twice, a charge
// made twice) cannot be taken back. And a server that cannot reach
// JetStream could not give the run its tables, events or usage anyway.
func (s *Scheduler) claim(r run, now time.Time, id string) bool {
	if s.ticks == nil {
		return true
	}
	tick := now.Truncate(r.period)
	ctx, cancel := context.WithTimeout(s.ctx, claimTimeout)
	defer cancel()
	_, err := s.ticks.Create(ctx, tickKey(r, tick), []byte(id))
	switch {
	case err == nil:
		return true
	case errors.Is(err, aegis.ErrConflict):
		// Another server runs this tick.
		return false
	case s.ctx.Err() != nil:
		return false // closing
	}
	s.log.Warn("scheduled run skipped", logkey.RequestID, id, logkey.App, r.app, logkey.Function, r.function,
		logkey.Cron, r.expr, logkey.Reason, "tick not claimed", logkey.Error, err)
	return false
}

// tickKey names one tick of one schedule trigger the same on every
// server: the trigger (app, function, its index, its expression) hashed,
// since an expression holds characters no key may, then the tick's Unix
// time in seconds.
func tickKey(r run, tick time.Time) string {
	h := sha256.New()
	for _, part := range []string{r.app, r.function, strconv.Itoa(r.trigger), r.expr} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "t." + hex.EncodeToString(h.Sum(nil)[:16]) + "." + strconv.FormatInt(tick.Unix(), 10)
}

// aligned returns the schedule a trigger runs on and the period its ticks
// are named by. Cron expressions fire on the wall clock's minutes, the
// same on every server (in one time zone), at most once a minute: a tick
// is named by its minute. "@every D" counts D from when the runner
// started, which differs between servers and restarts on every deploy
// (each Sync builds a new runner), so two servers would never share a
// tick; here it fires at the multiples of D instead, counted from Go's
// zero time: the same instants on every server, whenever it started, and
// a schedule longer than the time between two deploys still fires.
func aligned(s manifest.CronSchedule) (manifest.CronSchedule, time.Duration) {
	if d, ok := s.(cron.ConstantDelaySchedule); ok && d.Delay >= time.Second {
		return every(d.Delay), d.Delay
	}
	// ParseCron rounds @every below a second up to one; a schedule of
	// another kind is a cron expression.
	return s, time.Minute
}

// every fires at each multiple of its duration.
type every time.Duration

// Next is the first multiple of the duration after t.
func (e every) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return t.Truncate(d).Add(d)
}
