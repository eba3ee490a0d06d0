package sandbox

import (
	"sort"
	"sync/atomic"
)

// poolKey names a function across its versions.
type poolKey struct{ app, function string }

// coldStartsOf returns the cold start counter of app/function, shared by
// all its versions so a deploy does not reset it.
func (e *Engine) coldStartsOf(app, function string) *atomic.Uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := poolKey{app, function}
	c := e.coldStarts[k]
	if c == nil {
		c = new(atomic.Uint64)
		e.coldStarts[k] = c
	}
	return c
}

// warmInstances is how many instances wait ready: idle ones (reuse) and
// pre-warmed fresh ones (per-request isolation).
func (f *Function) warmInstances() int {
	f.mu.Lock()
	n := len(f.idle)
	f.mu.Unlock()
	if f.warm != nil {
		n += len(f.warm)
	}
	return n
}

// PoolStats calls fn for every function the engine has run or holds, by
// app and function name in order: the invocations that created their
// instance on the request path since the engine started (cold starts, all
// versions together) and the instances waiting ready now (all versions
// still open, so a version draining after a deploy still counts). It is
// what the metrics package reads at scrape time.
func (e *Engine) PoolStats(fn func(app, function string, coldStarts uint64, warm int)) {
	e.mu.Lock()
	warm := make(map[poolKey]int, len(e.coldStarts))
	fns := make([]*Function, 0, len(e.functions))
	for f := range e.functions {
		fns = append(fns, f)
	}
	cold := make(map[poolKey]uint64, len(e.coldStarts))
	for k, c := range e.coldStarts {
		cold[k] = c.Load()
	}
	e.mu.Unlock()
	for _, f := range fns {
		warm[poolKey{f.cfg.App, f.cfg.Function}] += f.warmInstances()
	}
	keys := make([]poolKey, 0, len(cold))
	for k := range cold {
		keys = append(keys, k)
	}
	for k := range warm {
		if _, ok := cold[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].app != keys[j].app {
			return keys[i].app < keys[j].app
		}
		return keys[i].function < keys[j].function
	})
	for _, k := range keys {
		fn(k.app, k.function, cold[k], warm[k])
	}
}
