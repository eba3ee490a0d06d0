package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// A call context must answer as context.WithTimeoutCause(parent, timeout,
// ErrTimeout) plus a value for the invocation would.
func TestCallContextLikeWithTimeoutCause(t *testing.T) {
	parentCause := errors.New("client went away")
	cases := []struct {
		name      string
		timeout   time.Duration
		cancel    bool // cancel the parent with parentCause
		wait      bool // wait on Done (makes the timer)
		wantErr   error
		wantCause error
	}{
		{"within deadline", time.Hour, false, false, nil, nil},
		{"deadline passed, no waiter", time.Millisecond, false, false, context.DeadlineExceeded, ErrTimeout},
		{"deadline passed, waited", time.Millisecond, false, true, context.DeadlineExceeded, ErrTimeout},
		{"parent cancelled", time.Hour, true, false, context.Canceled, parentCause},
		{"parent cancelled, waited", time.Hour, true, true, context.Canceled, parentCause},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
			defer cancel(nil)
			inv := &invocation{}
			inv.call.start(parent, tc.timeout, inv)
			defer inv.call.end()
			ctx := context.Context(&inv.call)
			if tc.cancel {
				cancel(parentCause)
			} else if tc.timeout < time.Second {
				time.Sleep(5 * tc.timeout)
			}
			if tc.wait {
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("Done never closed")
				}
			}
			if err := ctx.Err(); !errors.Is(err, tc.wantErr) {
				t.Errorf("Err() = %v, want %v", err, tc.wantErr)
			}
			if cause := context.Cause(ctx); cause != tc.wantCause {
				t.Errorf("Cause = %v, want %v", cause, tc.wantCause)
			}
			if invocationFrom(ctx) != inv {
				t.Error("the invocation is not found through the context")
			}
			if ctx.Value(ctxKey{}) != "v" {
				t.Error("the caller's values are not found through the context")
			}
		})
	}
}

func TestCallContextDeadline(t *testing.T) {
	inv := &invocation{}
	inv.call.start(context.Background(), time.Hour, inv)
	if d, ok := inv.call.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("Deadline() = %v, %v; want about an hour from now", d, ok)
	}
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv.call.start(parent, time.Hour, inv)
	if d, _ := inv.call.Deadline(); time.Until(d) > time.Minute {
		t.Errorf("Deadline() = %v; want the caller's earlier one", d)
	}
}

// The point of the call context: a call that ends in time never makes a
// timer, and one made after the call ended is already cancelled.
func TestCallContextTimerOnlyWhenWaitedOn(t *testing.T) {
	inv := &invocation{}
	inv.call.start(context.Background(), time.Hour, inv)
	_ = inv.call.Err()
	_ = inv.call.Value(ctxKey{})
	if inv.call.timed.Load() != nil {
		t.Fatal("a timer was made without anything waiting on Done")
	}
	done := inv.call.Done()
	if inv.call.timed.Load() == nil {
		t.Fatal("Done made no timer")
	}
	inv.call.end()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("end did not close Done")
	}
	if !errors.Is(inv.call.Err(), context.Canceled) {
		t.Errorf("Err() after end = %v, want context.Canceled", inv.call.Err())
	}

	late := &invocation{}
	late.call.start(context.Background(), time.Hour, late)
	late.call.end()
	if !errors.Is(late.call.Err(), context.Canceled) {
		t.Errorf("Err() after end = %v, want context.Canceled", late.call.Err())
	}
	select {
	case <-late.call.Done():
	default:
		t.Error("Done after end is not closed")
	}
}
