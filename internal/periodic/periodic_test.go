package periodic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoopRunsUntilStopped(t *testing.T) {
	var runs atomic.Int64
	running := make(chan struct{}, 1)
	l := Start(time.Millisecond, time.Second, func(ctx context.Context) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a run without a deadline")
		}
		runs.Add(1)
		select {
		case running <- struct{}{}:
		default:
		}
	})
	<-running
	<-running
	l.Stop()
	n := runs.Load()
	if n < 2 {
		t.Fatalf("%d runs", n)
	}
	time.Sleep(10 * time.Millisecond)
	if runs.Load() != n {
		t.Error("it ran after Stop returned")
	}
	l.Stop() // safe twice
}
