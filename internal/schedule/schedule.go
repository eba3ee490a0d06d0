// Package schedule runs schedule triggers: cron expressions from the active
// manifests, each firing an invocation with a fresh request id, once per
// tick across every server sharing one NATS (claim.go).
package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	cron "github.com/netresearch/go-cron"

	"github.com/aegis-platform/aegis/internal/dispatch"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/usage"
	"github.com/aegis-platform/aegis/manifest"
)

// Scheduler owns one cron runner rebuilt on every Sync.
type Scheduler struct {
	dispatcher *dispatch.Dispatcher
	snap       func() *registry.Snapshot
	log        *slog.Logger
	ticks      Ticks

	mu   sync.Mutex
	cron *cron.Cron
	ctx  context.Context
	stop context.CancelFunc
}

// New returns a scheduler with nothing scheduled. Every run claims its
// tick in ticks first and runs only if this server's claim is the one
// made (claim.go); nil ticks runs every tick here, for a server that
// knows it is alone.
func New(d *dispatch.Dispatcher, snapshot func() *registry.Snapshot, logger *slog.Logger, ticks Ticks) *Scheduler {
	ctx, stop := context.WithCancel(context.Background())
	return &Scheduler{dispatcher: d, snap: snapshot, log: logger, ticks: ticks, ctx: ctx, stop: stop}
}

// Sync replaces every schedule with those of snap. It cannot fail: a
// schedule that no longer parses (a version restored from before a change
// of the grammar) is logged and skipped; the error result is the shape
// every trigger kind shares (server).
func (s *Scheduler) Sync(_ context.Context, snap *registry.Snapshot) error {
	c := cron.New()
	n := 0
	for _, appName := range snap.AppNames() {
		app := snap.Apps[appName]
		names := app.Manifest.FunctionNames()
		sort.Strings(names)
		for _, fnName := range names {
			for i, t := range app.Manifest.Functions[fnName].Triggers {
				if t.Schedule == nil {
					continue
				}
				run := run{app: appName, function: fnName, trigger: i, expr: t.Schedule.Cron}
				// The manifest's parser, not the runner's own, so a schedule
				// means here what deploy validation accepted.
				sched, err := manifest.ParseCron(run.expr)
				if err == nil {
					sched, run.period = aligned(sched)
					_, err = c.ScheduleJob(sched, cron.FuncJob(func() { s.fire(run) }))
				}
				if err != nil {
					// The deploy has happened; log rather than fail it.
					s.log.Error("schedule rejected", logkey.App, run.app, logkey.Function, run.function, logkey.Cron, run.expr, logkey.Error, err)
					continue
				}
				n++
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cron != nil {
		s.cron.Stop()
	}
	s.cron = c
	if n > 0 {
		c.Start()
	}
	return nil
}

// run is one schedule trigger: what fires and how its ticks are named.
type run struct {
	app, function string
	trigger       int    // the trigger's index in the function's triggers
	expr          string // the cron expression, as written
	// period is what a tick's time is truncated to: the interval of an
	// @every schedule, a minute for a cron expression (claim.go).
	period time.Duration
}

func (s *Scheduler) fire(r run) {
	f, ok := s.snap().Function(r.app, r.function)
	if !ok {
		return
	}
	app, fn := r.app, r.function
	// Every run starts a trace of its own, under the run's request id.
	id := telemetry.NewRequestID()
	if !s.claim(r, time.Now(), id) {
		return
	}
	req := &sandbox.Request{Kind: sandbox.KindSchedule, RequestID: id, Origin: sandbox.OriginSchedule, Trace: telemetry.Span{TraceID: id}}
	// The call graph's edge: schedule → function.
	req.Trigger = r.expr
	_, err := s.dispatcher.Invoke(s.ctx, f, req) // the dispatcher logs failures
	if errors.Is(err, usage.ErrBudgetExhausted) || errors.Is(err, guard.ErrQuarantined) || errors.Is(err, guard.ErrThrottled) {
		// A run a spent budget or the guard refused is skipped, not made
		// up later: the next one fires at its time.
		s.log.Info("scheduled run skipped", logkey.RequestID, req.RequestID, logkey.App, app, logkey.Function, fn,
			logkey.Reason, dispatch.FailureReason(err), logkey.Error, err)
	}
}

// Close stops firing and waits for running jobs.
func (s *Scheduler) Close() {
	s.mu.Lock()
	c := s.cron
	s.cron = nil
	s.mu.Unlock()
	s.stop()
	if c != nil {
		<-c.Stop().Done()
	}
}
