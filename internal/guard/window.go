package guard

import (
	"container/list"
	"time"
)

// window counts one rule's signals per address: the times of each
// address's last Threshold+1 signals in a ring, so "more than Threshold
// within Window" is exact (no fixed buckets an attacker could straddle).
// It tracks at most max addresses; a new one beyond that evicts the
// address whose last signal is the oldest. Memory is therefore bounded by
// max × (Threshold+1) timestamps whatever the traffic.
//
// A window is owned by the guard's one counting goroutine: no locks.
type window struct {
	rule  Rule
	max   int
	addrs map[string]*list.Element // of *track
	lru   *list.List               // front: most recently signalled
}

type track struct {
	addr  string
	times []int64 // ring of unix nanos, len Threshold+1
	n     int     // signals held (≤ len(times))
	next  int     // where the next one goes
}

func newWindow(r Rule, max int) *window {
	return &window{rule: r, max: max, addrs: map[string]*list.Element{}, lru: list.New()}
}

// add counts one signal from addr at now and reports whether the rule
// fires: more than Threshold signals within Window. Firing forgets the
// address, so counting starts afresh (a block is placed by the caller).
func (w *window) add(addr string, now time.Time) (count int, fire bool) {
	e, ok := w.addrs[addr]
	if ok {
		w.lru.MoveToFront(e)
	} else {
		if len(w.addrs) >= w.max {
			oldest := w.lru.Back()
			delete(w.addrs, oldest.Value.(*track).addr)
			w.lru.Remove(oldest)
		}
		e = w.lru.PushFront(&track{addr: addr, times: make([]int64, w.rule.Threshold+1)})
		w.addrs[addr] = e
	}
	t := e.Value.(*track)
	ns := now.UnixNano()
	t.times[t.next] = ns
	t.next = (t.next + 1) % len(t.times)
	t.n = min(t.n+1, len(t.times))
	if t.n < len(t.times) {
		return t.n, false
	}
	// The ring is full: the slot about to be overwritten holds the oldest
	// of the last Threshold+1 signals.
	oldest := t.times[t.next]
	if ns-oldest > int64(w.rule.Window) {
		return w.rule.Threshold, false
	}
	w.forget(addr)
	return len(t.times), true
}

// forget drops addr's count.
func (w *window) forget(addr string) {
	if e, ok := w.addrs[addr]; ok {
		delete(w.addrs, addr)
		w.lru.Remove(e)
	}
}

// tracked is how many addresses are counted, for tests.
func (w *window) tracked() int { return len(w.addrs) }
