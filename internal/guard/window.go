package guard

import (
	"container/list"
	"time"
)

// window counts one rule's signals per target (an address, a key, …): the times of each
// address's signals within the last Window, oldest first, so "more than
// Threshold within Window" is exact (no fixed buckets an attacker could
// straddle). An address holds at most Threshold+1 times (the rule fires
// then) and never more than it sent within the window, so a rule with a
// huge threshold costs no more than the traffic it sees. It tracks at most
// max addresses; a new one beyond that evicts the address whose last
// signal is the oldest. Memory is bounded by max × (Threshold+1) times.
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
	times []int64 // unix nanos within the window, oldest first
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
		e = w.lru.PushFront(&track{addr: addr})
		w.addrs[addr] = e
	}
	t := e.Value.(*track)
	ns := now.UnixNano()
	// Drop the times that left the window; append reallocates (copying
	// only the live ones) once the front is used up.
	i := 0
	for i < len(t.times) && ns-t.times[i] > int64(w.rule.Window) {
		i++
	}
	t.times = append(t.times[i:], ns)
	if len(t.times) <= w.rule.Threshold {
		return len(t.times), false
	}
	count = len(t.times)
	w.forget(addr)
	return count, true
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
