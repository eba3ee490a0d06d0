// Package periodic owns the background jobs a server runs on a timer:
// the flushes of usage and the call graph to JetStream, the raise of
// streams created short while cluster members were down, the vault's sweep
// of expired secret versions. Each run gets a context bounded by a
// timeout, so a stuck JetStream cannot hold the job for ever, and Stop
// waits for a run in progress, so what runs after it (a last flush) never
// overlaps one.
package periodic

import (
	"context"
	"sync"
	"time"
)

// Loop is a job running every interval until Stop.
type Loop struct {
	stop, done chan struct{}
	once       sync.Once
}

// Start runs job every interval, each run with a context that ends after
// timeout.
func Start(interval, timeout time.Duration, job func(ctx context.Context)) *Loop {
	l := &Loop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				job(ctx)
				cancel()
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a run in progress. Safe twice.
func (l *Loop) Stop() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
	})
}
