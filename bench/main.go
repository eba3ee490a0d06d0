// Command bench measures Aegis against baselines taken in the same run on the
// same machine, and writes a Markdown table and JSON to bench/results/.
//
//	go run ./bench            # full run
//	go run ./bench -quick     # checks the harness works (CI); its numbers mean nothing
//	go run ./bench -only 1,6  # some scenarios
//
// Every figure is a ratio to its baseline: the machines are shared and noisy,
// so absolute numbers from different runs are not comparable. Each pair is
// run alternately several times and the medians are reported.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	quick := flag.Bool("quick", false, "tiny run that only checks the harness works")
	only := flag.String("only", "", "comma-separated scenario numbers to run (default all)")
	out := flag.String("out", "bench/results", "directory for results.json and results.md")
	rounds := flag.Int("rounds", 5, "alternating rounds per baseline/subject pair")
	verbose := flag.Bool("v", false, "log server output to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	env, err := newEnv(*quick, *rounds, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer env.Close()

	want := map[int]bool{}
	for _, s := range strings.Split(*only, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			want[n] = true
		}
	}
	sort.Slice(scenarios, func(i, j int) bool { return scenarios[i].ID < scenarios[j].ID })
	report := &Report{Started: time.Now().UTC(), Quick: *quick, Machine: machine()}
	failed := false
	for _, sc := range scenarios {
		if len(want) > 0 && !want[sc.ID] {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %d. %s\n", sc.ID, sc.Name)
		start := time.Now()
		results, err := sc.Run(ctx, env)
		if err != nil {
			failed = true
			fmt.Fprintf(os.Stderr, "   failed: %v\n", err)
			report.Errors = append(report.Errors, fmt.Sprintf("%d. %s: %v", sc.ID, sc.Name, err))
		}
		for _, r := range results {
			r.Scenario = sc.ID
			fmt.Fprintf(os.Stderr, "   %s\n", r.line())
			report.Results = append(report.Results, r)
		}
		fmt.Fprintf(os.Stderr, "   (%.1fs)\n", time.Since(start).Seconds())
	}
	report.Finished = time.Now().UTC()
	if err := report.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
	slog.Debug("done")
}
