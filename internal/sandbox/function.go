package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// DefaultMaxReuse is how many invocations a warm instance serves before it
// is replaced, bounding what state (and leaks) one instance can accumulate.
const DefaultMaxReuse = 10000

// prewarmSize is how many fresh instances a per-request Function keeps
// ready. Small on purpose: each is a whole guest heap held in memory.
const prewarmSize = 2

var errEngineClosed = fmt.Errorf("%w: sandbox engine is closed", aegis.ErrUnavailable)

// FunctionConfig is one deployed function version. Limits arrive already
// defaulted by the manifest package; zero values still get the defaults
// here so a Function is never unlimited.
type FunctionConfig struct {
	App, Function, Version string
	Grants                 manifest.Grants
	Limits                 manifest.Limits
	Isolation              manifest.Isolation
	// MaxReuse is how many invocations one warm instance serves before it
	// is recycled; 0 means DefaultMaxReuse.
	MaxReuse int
}

// limits are FunctionConfig.Limits with defaults applied, in the units the
// sandbox uses.
type limits struct {
	timeout     time.Duration
	memory      uint64
	concurrency int
	maxBody     int64
	maxResponse int64
}

func resolveLimits(l manifest.Limits) limits {
	r := limits{
		timeout:     time.Duration(l.Timeout),
		memory:      uint64(max(l.Memory, 0)),
		concurrency: l.Concurrency,
		maxBody:     int64(l.MaxBody),
		maxResponse: int64(l.MaxResponse),
	}
	if r.timeout <= 0 {
		r.timeout = manifest.DefaultTimeout
	}
	if r.memory == 0 {
		r.memory = manifest.DefaultMemory
	}
	if r.concurrency <= 0 {
		r.concurrency = manifest.DefaultConcurrency
	}
	if r.maxBody <= 0 {
		r.maxBody = manifest.DefaultMaxBody
	}
	if r.maxResponse <= 0 {
		r.maxResponse = manifest.DefaultMaxResponse
	}
	// The ABI passes lengths as i32 and memory is at most 4 GiB.
	r.memory = min(r.memory, 1<<32)
	r.maxBody = min(r.maxBody, math.MaxInt32)
	r.maxResponse = min(r.maxResponse, math.MaxInt32)
	return r
}

// Function is one function version ready to be invoked: a module, its
// configuration and its pool of instances. It is safe for concurrent use.
type Function struct {
	engine *Engine
	module *Module
	cfg    FunctionConfig
	egress []manifest.HostPattern // cfg.Grants.Egress, parsed
	limits limits
	logger *slog.Logger
	// coldStarts is shared by every version of the function (pools.go).
	coldStarts *atomic.Uint64

	// slots holds one token per invocation in flight, so at most
	// limits.concurrency instances exist and run at a time.
	slots chan struct{}

	mu     sync.Mutex
	idle   []*instance // reuse: warm instances, most recently used last
	closed bool

	// Per-request isolation: warm holds fresh instances made in the
	// background by fill, which stop ends.
	warm chan *instance
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// NewFunction prepares a function version. For reactors it creates the
// first instance now, so a module whose initialization fails or needs more
// memory than its limit is refused at deploy time, not on a request.
func (e *Engine) NewFunction(ctx context.Context, m *Module, cfg FunctionConfig) (*Function, error) {
	if cfg.MaxReuse <= 0 {
		cfg.MaxReuse = DefaultMaxReuse
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	switch cfg.Isolation {
	case "", manifest.IsolationReuse, manifest.IsolationPerRequest:
	default:
		return nil, fmt.Errorf("new function %s/%s: %w: isolation %q", cfg.App, cfg.Function, aegis.ErrInvalidArgument, cfg.Isolation)
	}
	// The manifest refused any pattern that does not parse at deploy; a
	// stored version that somehow holds one fails here rather than
	// granting less than it says.
	egress, err := cfg.Grants.Egress.Patterns()
	if err != nil {
		return nil, fmt.Errorf("new function %s/%s: %w: %w", cfg.App, cfg.Function, aegis.ErrInvalidArgument, err)
	}
	f := &Function{
		engine: e,
		module: m,
		cfg:    cfg,
		egress: egress,
		limits: resolveLimits(cfg.Limits),
		logger: e.logger.With(logkey.App, cfg.App, logkey.Function, cfg.Function, logkey.Version, cfg.Version),

		coldStarts: e.coldStartsOf(cfg.App, cfg.Function),
	}
	f.slots = make(chan struct{}, f.limits.concurrency)
	if m.minMemory > f.limits.memory {
		return nil, fmt.Errorf("new function %s/%s: %w: module needs %d bytes of memory at start, limit is %d",
			cfg.App, cfg.Function, ErrMemory, m.minMemory, f.limits.memory)
	}
	if m.style == StyleReactor || m.style == StyleComponent {
		ictx, cancel := context.WithTimeoutCause(ctx, f.limits.timeout, ErrTimeout)
		inst, err := f.newReactor(ictx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("new function %s/%s: %w", cfg.App, cfg.Function, err)
		}
		if f.perRequest() {
			f.warm = make(chan *instance, min(prewarmSize, f.limits.concurrency))
			f.warm <- inst
			var fillCtx context.Context
			fillCtx, f.stop = context.WithCancel(context.Background())
			f.wg.Add(1)
			go f.fill(fillCtx)
		} else {
			f.idle = append(f.idle, inst)
		}
	}
	if err := e.register(f); err != nil {
		_ = f.Close(ctx)
		return nil, err
	}
	return f, nil
}

// HostImports returns the "aegis" host functions the function's module
// imports, sorted (Module.HostImports).
func (f *Function) HostImports() []string {
	if f == nil {
		return nil
	}
	return f.module.HostImports()
}

func (f *Function) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *Function) perRequest() bool {
	// A component always gets a fresh instance: the JavaScript runtime
	// cannot answer a second request on the instance that answered the
	// first (StarlingMonkey issue 247), and wasi:http does not promise
	// that any guest can.
	return f.cfg.Isolation == manifest.IsolationPerRequest || f.module.style == StyleComponent
}

// Close stops the background filler and closes idle instances. Invocations
// in flight finish; their instances are closed when they return. Close is
// safe to call more than once.
func (f *Function) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	idle := f.idle
	f.idle = nil
	f.mu.Unlock()

	if f.stop != nil {
		f.stop()
		f.wg.Wait()
		// fill has returned, so nothing else touches warm now.
		for len(f.warm) > 0 {
			(<-f.warm).close()
		}
	}
	for _, inst := range idle {
		inst.close()
	}
	f.engine.unregister(f)
	return nil
}

// fill keeps the per-request pool topped up until stopped. Failures back
// off so a module that cannot initialize does not spin a core.
func (f *Function) fill(ctx context.Context) {
	defer f.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ictx, cancel := context.WithTimeoutCause(ctx, f.limits.timeout, ErrTimeout)
		inst, err := f.newReactor(ictx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.logger.Error("prewarm instance failed", logkey.Error, err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		select {
		case f.warm <- inst:
		case <-ctx.Done():
			inst.close()
			return
		}
	}
}

// Invoke runs one invocation. Errors wrap ErrTimeout, ErrMemory,
// ErrResponseTooLarge or ErrTrap when the guest is at fault; waiting too
// long for a free instance wraps aegis.ErrLimitExceeded; a closed Function
// gives aegis.ErrUnavailable. The guest's failure detail is logged here
// with the request id and is also in the error chain, for logs only.
func (f *Function) Invoke(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		return nil, fmt.Errorf("invoke %s: %w: nil request", f.name(), aegis.ErrInvalidArgument)
	}
	if f.isClosed() {
		return nil, fmt.Errorf("invoke %s: %w: function closed", f.name(), aegis.ErrUnavailable)
	}
	if int64(len(req.Body)) > f.limits.maxBody {
		return nil, fmt.Errorf("invoke %s: %w: request body of %d bytes, at most %d allowed",
			f.name(), aegis.ErrLimitExceeded, len(req.Body), f.limits.maxBody)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("invoke %s: %w: %w", f.name(), aegis.ErrUnavailable, context.Cause(ctx))
	}
	if err := f.acquireSlot(ctx); err != nil {
		return nil, err
	}
	defer func() { <-f.slots }()

	resp, err := f.invoke(ctx, req)
	if err != nil {
		f.logFailure(ctx, req, err)
		return nil, fmt.Errorf("invoke %s: %w", f.name(), err)
	}
	return resp, nil
}

// acquireSlot takes one of the function's concurrency slots. A caller that
// finds them all busy queues for at most the function's timeout: long
// enough to absorb a burst, short enough that a stuck function turns into
// a fast "too many requests" instead of a pile of waiting connections.
func (f *Function) acquireSlot(ctx context.Context) error {
	select {
	case f.slots <- struct{}{}:
		return nil // fast path: no timer on the hot path
	default:
	}
	wait := time.NewTimer(f.limits.timeout)
	defer wait.Stop()
	select {
	case f.slots <- struct{}{}:
		return nil
	case <-wait.C:
		return fmt.Errorf("invoke %s: %w: all %d instances busy for %s",
			f.name(), aegis.ErrLimitExceeded, f.limits.concurrency, f.limits.timeout)
	case <-ctx.Done():
		return fmt.Errorf("invoke %s: %w: all %d instances busy: %w",
			f.name(), aegis.ErrLimitExceeded, f.limits.concurrency, context.Cause(ctx))
	}
}

func (f *Function) invoke(parent context.Context, req *Request) (*Response, error) {
	inv := &invocation{
		fn:   f,
		host: f.engine.host,
		req:  req,
		caller: Caller{
			App:       f.cfg.App,
			Function:  f.cfg.Function,
			Version:   f.cfg.Version,
			RequestID: req.RequestID,
			Hop:       req.Hop,
			Grants:    &f.cfg.Grants,
			Egress:    f.egress,
			Origin:    req.Origin,
			Chain:     req.Chain,
			Limits:    &f.cfg.Limits,
			Meter:     req.Meter,
			Trace:     req.Trace,
		},
		outputLeft: maxGuestOutput,
	}
	if inv.caller.Meter == nil {
		inv.caller.Meter = &inv.meter
	}
	// The invocation's own context: the function's timeout on top of the
	// caller's context, and the invocation for host calls to find.
	inv.call.start(parent, f.limits.timeout, inv)
	defer inv.call.end()
	// The response handed out points into inv: drop the secrets it read
	// (and a pending result that may be one) rather than keep them alive
	// with it.
	defer inv.forgetSecrets()
	var ctx context.Context = &inv.call

	if f.module.style == StyleCommand {
		// Only a command's stdout can overflow the response cap mid-call
		// and needs to stop the guest on its own; reactors skip the extra
		// context on the hot path.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		inv.cancel = cancel
		inv.ctx = ctx
		return f.invokeCommand(ctx, inv)
	}
	inv.ctx = ctx
	if f.module.style == StyleComponent {
		return f.invokeComponent(ctx, inv)
	}

	inst, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	inst.current, inst.ctx = inv, inv.ctx
	callErr := inst.handle.CallWithStack(inv.ctx, inst.stack[:])
	inst.current, inst.ctx = nil, nil
	inv.flushOutput()
	inst.uses++

	var code uint32
	if callErr == nil {
		code = uint32(inst.stack[0])
	}
	err = f.outcome(ctx, inv, inst, callErr, code)
	if err == nil && callErr != nil {
		// exit(0) inside aegis_handle closes the instance: not a success
		// for a reactor, whose instance must survive the call.
		err = trapf("aegis_handle exited the module: %w", callErr)
	}
	if err != nil {
		inst.close()
		return nil, err
	}
	f.release(inst)
	// The invocation is done with; its response is handed out as is
	// rather than copied into an allocation of its own.
	resp := &inv.resp
	if resp.Status == 0 {
		resp.Status = 200
	}
	return resp, nil
}

func (f *Function) invokeCommand(ctx context.Context, inv *invocation) (*Response, error) {
	inv.body = &bytes.Buffer{}
	f.coldStarts.Add(1) // a command's instance is made for each invocation
	inst, callErr := f.runCommand(ctx, inv, bytes.NewReader(inv.req.Body))
	inv.flushOutput()
	defer inst.close()
	if err := f.outcome(ctx, inv, inst, callErr, 0); err != nil {
		return nil, err
	}
	return &Response{Status: 200, Body: inv.body.Bytes()}, nil
}

// outcome names why an invocation failed, most specific cause first, or
// returns nil if it succeeded.
func (f *Function) outcome(ctx context.Context, inv *invocation, inst *instance, callErr error, code uint32) error {
	// Err before Cause: a call context reads the clock in Err and, once
	// past its deadline, makes the timer that records ErrTimeout.
	ctxErr := ctx.Err()
	switch {
	case inv.failure != nil:
		return inv.failure
	case ctxErr != nil && context.Cause(ctx) == ErrTimeout:
		return ErrTimeout
	case ctxErr != nil:
		// The caller gave up (client gone, shutdown): not the guest's fault.
		return fmt.Errorf("%w: %w", aegis.ErrUnavailable, context.Cause(ctx))
	case inst.mem.exceeded.Load():
		return ErrMemory
	case callErr != nil:
		return inv.withMessage(callFailure(callErr))
	case code != 0:
		return inv.withMessage(trapf("handler returned failure code %d", int32(code)))
	}
	return nil
}

// withMessage attaches the function's own error message, if it logged one,
// to a failure of the guest's making.
func (inv *invocation) withMessage(err error) error {
	if err == nil || inv.errorLine == "" {
		return err
	}
	msg := functionMessage(inv.secrets.scrub(inv.errorLine))
	if msg == "" {
		return err
	}
	return &FunctionError{Message: msg, err: err}
}

// callFailure names a call's error: nil for a command that called exit(0).
// Apart from outcome so that the exit error it looks for is only put on
// the heap when a call failed.
func callFailure(callErr error) error {
	var exit *exitError
	if errors.As(callErr, &exit) {
		if exit.ExitCode() == 0 {
			return nil
		}
		return trapf("exit code %d", exit.ExitCode())
	}
	return trapf("%w", callErr)
}

// acquire returns an instance for one invocation: a warm idle one, a
// pre-warmed fresh one, or a new one. The caller holds a slot, so the
// number of instances never exceeds limits.concurrency.
func (f *Function) acquire(ctx context.Context) (*instance, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: function closed", aegis.ErrUnavailable)
	}
	if n := len(f.idle); n > 0 {
		inst := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return inst, nil
	}
	f.mu.Unlock()
	if f.perRequest() {
		select {
		case inst := <-f.warm:
			return inst, nil
		default:
		}
	}
	f.coldStarts.Add(1)
	return f.newReactor(ctx)
}

// release returns a healthy instance to the pool, or closes it when its
// isolation or reuse budget says it must not serve again.
func (f *Function) release(inst *instance) {
	if f.perRequest() || inst.uses >= f.cfg.MaxReuse {
		inst.close()
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		inst.close()
		return
	}
	f.idle = append(f.idle, inst)
	f.mu.Unlock()
}

func (f *Function) logFailure(ctx context.Context, req *Request, err error) {
	level := slog.LevelWarn
	if errors.Is(err, aegis.ErrUnavailable) {
		level = slog.LevelInfo // the caller went away or we are shutting down
	}
	attrs := []slog.Attr{slog.String(logkey.RequestID, req.RequestID), slog.Any(logkey.Error, err)}
	if errors.Is(err, aegis.ErrLimitExceeded) {
		// Limit hits are security-relevant: a guest probing its cage, or
		// an attack on a function, shows up as a run of these.
		attrs = append(attrs, slog.Bool(logkey.Security, true), slog.String(logkey.Reason, "limit"))
	}
	f.logger.LogAttrs(ctx, level, "invocation failed", attrs...)
}

func (f *Function) name() string {
	return f.cfg.App + "/" + f.cfg.Function + "@" + f.cfg.Version
}
