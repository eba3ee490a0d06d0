package main

import (
	"fmt"
	"time"
)

// The component scenarios (2, 3, 4, 6) time calls in plain loops rather
// than with testing.Benchmark: a benchmark sizes itself to a second per
// measurement, which multiplied by rounds and pairs would take minutes, and
// Alternate needs one number per call anyway.

// perOpLoop is a calibrated loop: n calls of op, sized from a trial so that
// one measurement takes about the budget whatever op costs.
type perOpLoop struct {
	n  int
	op func() error
}

// calibrate runs op a few times and sizes a loop to last about budget. The
// trial also warms caches and pools, so the first measured round is not an
// outlier.
func calibrate(budget time.Duration, op func() error) (*perOpLoop, error) {
	n, elapsed := 0, time.Duration(0)
	start := time.Now()
	for elapsed < budget/10 || n < 3 {
		if err := op(); err != nil {
			return nil, err
		}
		n++
		elapsed = time.Since(start)
	}
	per := elapsed / time.Duration(n)
	return &perOpLoop{n: max(int(budget/max(per, 1)), 3), op: op}, nil
}

// nsPerOp runs the loop once and returns the mean nanoseconds per call.
func (l *perOpLoop) nsPerOp() (float64, error) {
	start := time.Now()
	for i := 0; i < l.n; i++ {
		if err := l.op(); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(l.n), nil
}

// p50Micros runs op n times, one after the other, and returns the median
// latency in microseconds. pause, when positive, is waited between calls
// (not timed), for subjects whose cost depends on the arrival rate.
func p50Micros(n int, pause time.Duration, op func() error) (float64, error) {
	lat := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if pause > 0 {
			time.Sleep(pause)
		}
		start := time.Now()
		if err := op(); err != nil {
			return 0, fmt.Errorf("call %d: %w", i+1, err)
		}
		lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
	}
	return Median(lat), nil
}

// ratioResult fills the fields every "subject against baseline, lower is
// better" result shares.
func ratioResult(name, unit, baseName string, base, subject float64, samples []Pair) *Result {
	r := &Result{Name: name, Unit: unit, Subject: subject, Baseline: base, BaseName: baseName, Samples: samples}
	if base > 0 {
		r.Ratio = subject / base
	}
	return r
}

// pairsResult is ratioResult of the medians of pairs, each side's own
// (a figure measured beside another, such as CPU during latency rounds).
func pairsResult(name, unit, baseName string, pairs []Pair) *Result {
	b, s := make([]float64, 0, len(pairs)), make([]float64, 0, len(pairs))
	for _, p := range pairs {
		b, s = append(b, p.Baseline), append(s, p.Subject)
	}
	return ratioResult(name, unit, baseName, Median(b), Median(s), pairs)
}

// atMost sets r's target as a ratio at most limit, with note saying
// which side is which ("with / without").
func atMost(r *Result, limit float64, note string) *Result {
	r.RatioNote = note
	r.Target = fmt.Sprintf("≤ %.2f", limit)
	r.Met = Met(r.Ratio <= limit)
	return r
}

// alternateWarm warms two request loops (20 calls each: instances,
// connection, first runs) and then times them alternately, each round the
// median of calls sequential requests.
func alternateWarm(rounds, calls int, base, subject func() error) (float64, float64, []Pair, error) {
	for range 20 {
		if err := base(); err != nil {
			return 0, 0, nil, err
		}
		if err := subject(); err != nil {
			return 0, 0, nil, err
		}
	}
	return Alternate(rounds,
		func() (float64, error) { return p50Micros(calls, 0, base) },
		func() (float64, error) { return p50Micros(calls, 0, subject) })
}
