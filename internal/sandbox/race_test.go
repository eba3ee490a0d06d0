//go:build race

package sandbox

// raceEnabled: the race detector slows the Go side of every call several
// times over, so timing assertions allow for it.
const raceEnabled = true
