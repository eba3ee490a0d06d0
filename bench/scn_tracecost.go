package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Scenario 13: what tracing costs every request. Tracing cannot be turned
// off in a released server, so the baseline is the same server built with
// -tags aegis_notrace (no trace context made or carried, no span id, no
// trace in the invocation record, which then goes to one subject per
// function). Both run as child processes with the echo app; requests go
// to each alternately, one after the other, and the CPU each child spent
// per request is read from the kernel's per-thread accounting. The audit
// log is on in both: it records admin changes and security events, none
// of which an echo request makes, so its cost on this path is the check
// of each log line, and the echo writes none.
func init() {
	register(Scenario{ID: 13, Name: "tracing always on: echo on the released build vs -tags aegis_notrace", Run: runTraceCost})
}

func runTraceCost(ctx context.Context, env *Env) ([]*Result, error) {
	calls := 2000
	if env.Quick {
		calls = 40
	}
	wasm, manifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	type side struct {
		child *childServer
		key   string
		cpu   float64 // µs per request in the last round
	}
	sides := make([]*side, 2)
	defer func() {
		for _, s := range sides {
			if s != nil && s.child != nil {
				s.child.stop()
			}
		}
	}()
	for i, tag := range []string{"aegis_notrace", ""} {
		bin, err := buildAegis(ctx, env, tag)
		if err != nil {
			return nil, err
		}
		s := &side{}
		sides[i] = s
		if s.child, err = startChild(ctx, bin, env.TempDir(), env.Verbose); err != nil {
			return nil, err
		}
		if _, err := s.child.Deploy(ctx, "echo", manifest, wasm, "echo"); err != nil {
			return nil, fmt.Errorf("deploy echo: %w", err)
		}
		if s.key, err = s.child.Key(ctx, "bench"); err != nil {
			return nil, err
		}
	}
	hc := newBenchClient()
	op := func(s *side) func() error {
		return func() error { _, err := echoPost(ctx, hc, s.child.Gateway+"/echo", s.key); return err }
	}
	for range 50 {
		for _, s := range sides {
			if err := op(s)(); err != nil {
				return nil, err
			}
		}
	}
	measured := func(s *side) func() (float64, error) {
		return func() (float64, error) {
			c0, err := processCPU(s.child.cmd.Process.Pid)
			if err != nil {
				return 0, err
			}
			p50, err := p50Micros(calls, 0, op(s))
			c1, cerr := processCPU(s.child.cmd.Process.Pid)
			if cerr != nil {
				return 0, cerr
			}
			s.cpu = float64(c1-c0) / float64(calls) / 1e3
			return p50, err
		}
	}
	var cpuPairs []Pair
	b, t, samples, err := Alternate(env.Rounds, measured(sides[0]), func() (float64, error) {
		v, err := measured(sides[1])()
		cpuPairs = append(cpuPairs, Pair{Baseline: sides[0].cpu, Subject: sides[1].cpu})
		return v, err
	})
	if err != nil {
		return nil, err
	}
	lat := atMost(ratioResult("echo median latency, traced", "µs", "-tags aegis_notrace", b, t, samples), 1.03, "traced / not")
	lat.Notes = fmt.Sprintf("median of %d sequential requests per round, each server a child process", calls)
	cpu := atMost(pairsResult("server CPU per echo request, traced", "µs", "-tags aegis_notrace", cpuPairs), 1.03, "traced / not")
	cpu.Notes = "CPU time of every thread of the server process (embedded NATS included), /proc/PID/task/*/schedstat, over each round"
	return []*Result{lat, cpu}, nil
}

// processCPU is the CPU time, in nanoseconds, the threads of process pid
// have run so far (the first field of each /proc/PID/task/TID/schedstat).
func processCPU(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("read CPU time of process %d: no /proc/PID/task (not Linux?)", pid)
	}
	var sum int64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		field, _, _ := strings.Cut(string(b), " ")
		n, err := strconv.ParseInt(strings.TrimSpace(field), 10, 64)
		if err == nil {
			sum += n
		}
	}
	return sum, nil
}
