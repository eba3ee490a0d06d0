package guard

import (
	"container/list"
	"time"
)

// counter counts one rule's signals per target and says when it fires.
// Counters are owned by the guard's one counting goroutine: no locks.
type counter interface {
	rule() Rule
	// add counts n signals like e for target at now and reports whether
	// the rule fires. For n above one (the invocation signal's batches),
	// e.Value is the n signals' total.
	add(target string, e *Event, n int64, now time.Time) (firing, bool)
}

// firing is what the window held when a rule fired.
type firing struct {
	// count is the signals, or the GB-seconds of a rule measuring them.
	count float64
	// invocations is how many signals the window held (the rate a
	// throttle allows is worked out from it).
	invocations float64
	// baseline is the average per window the count was compared with.
	baseline float64
	// limit is the level above which the rule fired: its threshold, or
	// Baseline times the baseline when that is higher.
	limit float64
}

// newCounter picks the counter a rule needs: exact sliding windows for a
// count against a threshold, fixed windows for a sum or a baseline.
func newCounter(r Rule, max int) counter {
	if r.Baseline > 0 || r.GBSeconds {
		return newBuckets(r, max)
	}
	return sliding{newWindow(r, max)}
}

type sliding struct{ w *window }

func (s sliding) rule() Rule { return s.w.rule }

func (s sliding) add(target string, _ *Event, n int64, now time.Time) (firing, bool) {
	// A window holds at most Threshold+1 times: more at one instant
	// changes nothing but that it fires.
	for range min(n, int64(s.w.rule.Threshold)+1) {
		if count, fire := s.w.add(target, now); fire {
			return firing{count: float64(count), invocations: float64(count), limit: float64(s.w.rule.Threshold)}, true
		}
	}
	return firing{}, false
}

// buckets counts per target in fixed windows (Window long, aligned to the
// epoch) and remembers the sums of the last BaselineWindows windows, so a
// rule can compare the current window with the target's own past. It
// tracks at most max targets, the least recently seen evicted, each in
// constant memory.
type buckets struct {
	r       Rule
	max     int
	targets map[string]*list.Element // of *history
	lru     *list.List
}

type history struct {
	target string
	start  int64 // the current window's start, unix nanos
	sum    float64
	n      float64 // signals in the current window
	fired  bool    // the rule fired in the current window already
	past   [BaselineWindows]float64
	filled int // windows of past that hold a value
	next   int // where the next finished window goes in past
}

func newBuckets(r Rule, max int) *buckets {
	return &buckets{r: r, max: max, targets: map[string]*list.Element{}, lru: list.New()}
}

func (b *buckets) rule() Rule { return b.r }

func (b *buckets) add(target string, e *Event, n int64, now time.Time) (firing, bool) {
	el, ok := b.targets[target]
	if ok {
		b.lru.MoveToFront(el)
	} else {
		if len(b.targets) >= b.max {
			oldest := b.lru.Back()
			delete(b.targets, oldest.Value.(*history).target)
			b.lru.Remove(oldest)
		}
		el = b.lru.PushFront(&history{target: target})
		b.targets[target] = el
	}
	h := el.Value.(*history)
	w := int64(b.r.Window)
	start := now.UnixNano() / w * w
	switch {
	case h.start == 0:
		h.start = start
	case start > h.start:
		// Close the current window, and the empty ones since, into past.
		gap := (start - h.start) / w
		if gap > BaselineWindows {
			// Even the window that just closed is older than the
			// baseline looks: every window it averages was empty.
			h.past, h.filled, h.next = [BaselineWindows]float64{}, BaselineWindows, 0
			h.sum, h.n, h.fired = 0, 0, false
			gap = 0
		}
		for range gap {
			h.past[h.next] = h.sum
			h.next = (h.next + 1) % BaselineWindows
			h.filled = min(h.filled+1, BaselineWindows)
			h.sum, h.n, h.fired = 0, 0, false
		}
		h.start = start
	}
	v := float64(n)
	if b.r.GBSeconds {
		v = e.Value
	}
	h.sum += v
	h.n += float64(n)
	if h.fired {
		return firing{}, false
	}
	if b.r.Baseline > 0 && h.filled < BaselineWindows {
		// Still learning the target's baseline (on this server): a
		// function new here has no past to be far above.
		return firing{}, false
	}
	var avg float64
	for i := range h.filled {
		avg += h.past[i]
	}
	if h.filled > 0 {
		avg /= float64(h.filled)
	}
	limit := float64(b.r.Threshold)
	if b.r.Baseline > 0 && b.r.Baseline*avg > limit {
		limit = b.r.Baseline * avg
	}
	if h.sum <= limit {
		return firing{}, false
	}
	h.fired = true
	return firing{count: h.sum, invocations: h.n, baseline: avg, limit: limit}, true
}

// tracked is how many targets are counted, for tests.
func (b *buckets) tracked() int { return len(b.targets) }
