// Package dispatch is the one path every invocation takes, whatever
// triggered it (gateway, event, object change, schedule, admin): it runs the
// function, writes the invocation record with its request id, and tracks
// in-flight work so shutdown can drain it.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// ErrDraining is returned once shutdown has begun.
var ErrDraining = fmt.Errorf("%w: server is shutting down", aegis.ErrUnavailable)

// Dispatcher runs invocations.
type Dispatcher struct {
	logs *funclog.Log
	log  *slog.Logger

	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
}

// New returns a Dispatcher writing invocation records to logs.
func New(logs *funclog.Log, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{logs: logs, log: logger}
}

// Invoke runs req on fn and records the outcome.
func (d *Dispatcher) Invoke(ctx context.Context, fn *registry.Function, req *sandbox.Request) (*sandbox.Response, error) {
	d.mu.Lock()
	if d.draining {
		d.mu.Unlock()
		return nil, ErrDraining
	}
	d.inflight.Add(1)
	d.mu.Unlock()
	defer d.inflight.Done()

	start := time.Now()
	resp, err := fn.Instance.Invoke(ctx, req)
	end := time.Now()
	// A value, not a pointer: Write copies it into its queue, so the
	// record per invocation stays off the heap.
	rec := funclog.Record{
		Time: end.UTC(), Level: "info", Msg: "invocation", App: fn.App, Function: fn.Spec.Name, Version: fn.Version,
		RequestID: req.RequestID, Trigger: req.Kind,
		DurationMS: float64(end.Sub(start).Microseconds()) / 1000,
	}
	if err != nil {
		rec.Level, rec.Msg, rec.Error = "error", "invocation failed", err.Error()
		d.log.Warn("invocation failed", logkey.RequestID, req.RequestID, logkey.App, fn.App, logkey.Function, fn.Spec.Name,
			logkey.Version, fn.Version, logkey.Trigger, req.Kind, logkey.Error, err)
	} else {
		rec.Status = resp.Status
		if rec.Status == 0 {
			rec.Status = 200
		}
	}
	if d.logs != nil {
		d.logs.Write(&rec)
	}
	return resp, err
}

// Drain refuses new invocations and waits for those in flight until ctx ends.
func (d *Dispatcher) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.draining = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("drain: in-flight invocations still running at the deadline")
	}
}
