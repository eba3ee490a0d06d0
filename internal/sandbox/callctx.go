package sandbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callContext is the context of one reactor invocation: the caller's
// context with the function's deadline, carrying the invocation for the
// host functions (invocationFrom). It stands for what
// context.WithTimeoutCause and context.WithValue would build, without
// their price on every call (a runtime timer armed and stopped, a
// registration with the caller's context, four allocations), which was
// more than a C guest's own run. Nearly every call ends well within its
// deadline, so the timer is only made when something waits for the end:
// Done (a blocking host call, a guest sleep, the preemption tick once the
// deadline has passed). Err reads the clock instead, so a call is never
// late to see its deadline for want of a timer, and once past it makes the
// timer, which records ErrTimeout as the cause.
//
// It lives inside its invocation (no allocation of its own) and must not
// be copied.
type callContext struct {
	parent   context.Context
	deadline time.Time
	inv      *invocation

	timed atomic.Pointer[timedContext]
	ended atomic.Bool
	mu    sync.Mutex // serializes making timed
}

// timedContext is the standard context a callContext delegates to once
// made: WithDeadlineCause(parent, deadline, ErrTimeout).
type timedContext struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *callContext) start(parent context.Context, timeout time.Duration, inv *invocation) {
	c.parent, c.deadline, c.inv = parent, time.Now().Add(timeout), inv
}

// end releases the timer, if one was made. Like a cancelled
// WithTimeoutCause context, the context reports context.Canceled from now
// on (unless it had already ended for another reason).
func (c *callContext) end() {
	c.ended.Store(true)
	c.mu.Lock()
	t := c.timed.Load()
	c.mu.Unlock()
	if t != nil {
		t.cancel()
	}
}

// made returns the standard context, making it on first use. Made after
// end, it is cancelled at once.
func (c *callContext) made() context.Context {
	if t := c.timed.Load(); t != nil {
		return t.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timed.Load(); t != nil {
		return t.ctx
	}
	ctx, cancel := context.WithDeadlineCause(c.parent, c.deadline, ErrTimeout)
	if c.ended.Load() {
		cancel()
	}
	c.timed.Store(&timedContext{ctx: ctx, cancel: cancel})
	return ctx
}

// Deadline is the earlier of the caller's deadline and the function's.
func (c *callContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *callContext) Done() <-chan struct{} { return c.made().Done() }

func (c *callContext) Err() error {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Err()
	}
	if c.ended.Load() || !time.Now().Before(c.deadline) {
		return c.made().Err()
	}
	return c.parent.Err()
}

// Value answers for the invocation, and otherwise as the standard context
// would: context.Cause finds the timer's cause through it once made, the
// caller's before.
func (c *callContext) Value(key any) any {
	if _, ok := key.(invocationKey); ok {
		return c.inv
	}
	if t := c.timed.Load(); t != nil {
		return t.ctx.Value(key)
	}
	return c.parent.Value(key)
}
