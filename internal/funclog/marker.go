package funclog

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// drops remembers, per function, how many of its records Write dropped
// since the writer last said so, so the writer can put one marker record
// ("N log records dropped", level warn) in each function's log. The
// total, which never goes down, is Log.Dropped and the metric.
type drops struct {
	pending atomic.Bool // something to mark; read by the writer after each record
	mu      sync.Mutex
	by      map[dropKey]int64
}

type dropKey struct{ app, function string }

// maxDropKeys bounds the functions remembered between two markers; drops
// of others are still counted in the total.
const maxDropKeys = 1024

// add counts one dropped record of app/function. Only a full queue calls
// it, so the lock is off the path of records that are written.
func (d *drops) add(app, function string) {
	d.mu.Lock()
	if d.by == nil {
		d.by = map[dropKey]int64{}
	}
	k := dropKey{app, function}
	if _, ok := d.by[k]; ok || len(d.by) < maxDropKeys {
		d.by[k]++
	}
	d.mu.Unlock()
	d.pending.Store(true)
}

// take returns what was dropped since the last take, in a stable order.
func (d *drops) take() []dropCount {
	d.mu.Lock()
	by := d.by
	d.by = nil
	d.pending.Store(false)
	d.mu.Unlock()
	out := make([]dropCount, 0, len(by))
	for k, n := range by {
		out = append(out, dropCount{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].app != out[j].app {
			return out[i].app < out[j].app
		}
		return out[i].function < out[j].function
	})
	return out
}

type dropCount struct {
	dropKey
	n int64
}

// DroppedMsg is the message of a marker record: how many records of the
// function were dropped before it.
func DroppedMsg(n int64) string {
	if n == 1 {
		return "1 log record dropped"
	}
	return strconv.FormatInt(n, 10) + " log records dropped"
}

// mark writes the marker records once the writer can: when records were
// dropped and the queue has room again (at most half full), or when the
// log closes (force), so a marker does not add to a backlog that is still
// growing.
func (l *Log) mark(w *writer, force bool) {
	if !l.drops.pending.Load() || (!force && len(l.queue) > cap(l.queue)/2) {
		return
	}
	counts := l.drops.take()
	var total int64
	for _, c := range counts {
		total += c.n
		r := Record{Time: time.Now().UTC(), Level: "warn", Msg: DroppedMsg(c.n), App: c.app, Function: c.function}
		l.publish(w, &r)
	}
	if total > 0 {
		l.logger.Warn("function log records dropped", logkey.Dropped, total)
	}
}
