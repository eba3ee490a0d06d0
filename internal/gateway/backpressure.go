package gateway

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Default bounds on asynchronous invocations in flight on one server.
const (
	DefaultMaxAsync            = 256
	DefaultMaxAsyncPerCaller   = 32
	DefaultMaxAsyncPerFunction = 64
)

// retryAfterSeconds is what a refusal by a full queue asks the client to
// wait: an async invocation takes about a function's run, and most runs
// are short; a client retrying sooner is refused again at no cost to us.
const retryAfterSeconds = 1

// Queue names, as the backpressure counter and log lines say them.
const (
	queueAsync         = "async"
	queueAsyncCaller   = "async_caller"
	queueAsyncFunction = "async_function"
)

// asyncBounds counts the asynchronous invocations in flight on this server
// in all, per caller (sandbox.Request.Origin) and per function, so that
// neither one caller nor one slow function can take every slot. The
// tables hold only keys with something in flight, so their size is bounded
// by the global bound, whatever callers send.
type asyncBounds struct {
	max, perCaller, perFunction int

	mu         sync.Mutex
	total      int
	byCaller   map[string]int
	byFunction map[string]int
	held       map[string]heldSlot // by invocation id (hold)
}

// heldSlot is a slot an accepted invocation holds until its result is
// final, wherever it runs.
type heldSlot struct {
	caller, function string
	since            time.Time
}

func newAsyncBounds(max, perCaller, perFunction int) *asyncBounds {
	return &asyncBounds{max: max, perCaller: perCaller, perFunction: perFunction,
		byCaller: map[string]int{}, byFunction: map[string]int{}, held: map[string]heldSlot{}}
}

// acquire takes a slot for caller and function (app + "/" + name), or
// names the queue that is full.
func (a *asyncBounds) acquire(caller, function string) (full string, bound int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.total >= a.max:
		return queueAsync, a.max
	case a.byFunction[function] >= a.perFunction:
		return queueAsyncFunction, a.perFunction
	case a.byCaller[caller] >= a.perCaller:
		return queueAsyncCaller, a.perCaller
	}
	a.total++
	a.byCaller[caller]++
	a.byFunction[function]++
	return "", 0
}

// release gives back a slot acquire took.
func (a *asyncBounds) release(caller, function string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	decrement(a.byCaller, caller)
	decrement(a.byFunction, function)
}

// hold files the slot acquire took for an accepted invocation under its id.
func (g *Gateway) hold(id, caller, function string) {
	a := g.async
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[id] = heldSlot{caller: caller, function: function, since: time.Now()}
}

// releaseHeld gives back the slot held for invocation id, if this server
// accepted it and still holds it.
func (g *Gateway) releaseHeld(id string) {
	a := g.async
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.held[id]
	if !ok {
		return
	}
	delete(a.held, id)
	a.total--
	decrement(a.byCaller, h.caller)
	decrement(a.byFunction, h.function)
}

// heldSweep is how often this server looks for results of invocations it
// accepted and another server ran; heldMax is how long it holds a slot
// at most, when it never sees the result (the record expired).
const (
	heldSweep = time.Second
	heldMax   = QueueMaxAge + asyncTimeout
)

// sweepHeld releases the slots of accepted invocations whose results
// another server wrote: the server that runs one releases its slot at once
// when it accepted it too, and this finds the others, reading only the
// records of invocations held past one sweep (at most MaxAsync reads).
func (g *Gateway) sweepHeld() {
	t := time.NewTicker(heldSweep)
	defer t.Stop()
	for {
		select {
		case <-g.bg.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		g.async.mu.Lock()
		var due []string
		for id, h := range g.async.held {
			if now.Sub(h.since) >= heldSweep {
				due = append(due, id)
			}
		}
		g.async.mu.Unlock()
		for _, id := range due {
			g.sweepOne(id, now)
		}
	}
}

func (g *Gateway) sweepOne(id string, now time.Time) {
	g.async.mu.Lock()
	h, ok := g.async.held[id]
	g.async.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(g.bg, heldSweep)
	defer cancel()
	res, _, err := g.cfg.Async.get(ctx, id)
	switch {
	case err == nil && res.Status == "pending" && now.Sub(h.since) < heldMax:
	case err != nil && now.Sub(h.since) < heldMax:
		// Unavailable: try again next sweep. Not found cannot happen
		// before the record's TTL, far beyond heldMax.
	default:
		g.releaseHeld(id)
	}
}

func decrement(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// refuseFull answers a request refused by a full queue: 503 with
// Retry-After and the usual error body, a security line (a flood of
// background work is how a caller runs up someone else's bill) and the
// backpressure counter.
func (g *Gateway) refuseFull(w http.ResponseWriter, r *http.Request, reqID, app, function, origin, queue string, bound int) {
	g.cfg.Metrics.Backpressure(app, function, queue)
	g.log.Warn("asynchronous invocation refused: queue full", logkey.Security, true, logkey.RequestID, reqID,
		logkey.App, app, logkey.Function, function, logkey.Reason, "queue full", logkey.Queue, queue,
		logkey.Bound, bound, logkey.Origin, origin, logkey.Remote, r.RemoteAddr)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	writeError(w, http.StatusServiceUnavailable, "too many asynchronous invocations in flight", reqID)
}
