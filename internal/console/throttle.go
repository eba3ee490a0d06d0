package console

import (
	"sync"
	"time"
)

// throttle slows repeated failed sign-ins from one address: after its n-th
// failure in a row an address waits firstWait·2^(n-1), at most maxWait,
// before the form is looked at again. It is per server and in memory,
// like the guard's counting: each failure also reaches the guard, whose
// brute_force rule blocks the address on every server (a block is shared
// through JetStream), so a guesser spreading tries over servers gains
// little before that.
type throttle struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

type failures struct {
	n    int
	last time.Time
}

const (
	firstWait = 250 * time.Millisecond
	maxWait   = 30 * time.Second
	// forgetAfter is how long an address's failures are remembered.
	forgetAfter = 15 * time.Minute
	// maxTracked bounds the memory a flood of addresses can take.
	maxTracked = 10000
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{m: map[string]*failures{}, now: now}
}

func waitAfter(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	if n > 8 {
		return maxWait
	}
	return min(firstWait<<(n-1), maxWait)
}

// wait is how long addr must still wait before its next try.
func (t *throttle) wait(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.m[addr]
	if !ok {
		return 0
	}
	left := f.last.Add(waitAfter(f.n)).Sub(t.now())
	return max(left, 0)
}

// fail records a failed sign-in from addr.
func (t *throttle) fail(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) >= maxTracked {
		for a, f := range t.m {
			if now.Sub(f.last) > forgetAfter {
				delete(t.m, a)
			}
		}
	}
	f, ok := t.m[addr]
	if !ok || now.Sub(f.last) > forgetAfter {
		if !ok && len(t.m) >= maxTracked {
			return // full of recent failures: the guard's block takes over
		}
		f = &failures{}
		t.m[addr] = f
	}
	f.n++
	f.last = now
}

// succeed forgets addr's failures.
func (t *throttle) succeed(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, addr)
}
