package gateway

import (
	"net/http"
	"strconv"
	"sync"

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
}

func newAsyncBounds(max, perCaller, perFunction int) *asyncBounds {
	return &asyncBounds{max: max, perCaller: perCaller, perFunction: perFunction,
		byCaller: map[string]int{}, byFunction: map[string]int{}}
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
