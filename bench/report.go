package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Scenario is one numbered measurement of the performance issue's table.
type Scenario struct {
	ID   int
	Name string
	Run  func(ctx context.Context, env *Env) ([]*Result, error)
}

// scenarios is filled by the scn_*.go files' init functions.
var scenarios []Scenario

func register(s Scenario) { scenarios = append(scenarios, s) }

// Result is one figure: a subject measured against a baseline in the same run.
type Result struct {
	Scenario int     `json:"scenario"`
	Name     string  `json:"name"`               // what was measured, e.g. "echo throughput"
	Unit     string  `json:"unit"`               // "req/s", "µs", "MB", …
	Subject  float64 `json:"subject"`            // median of the subject
	Baseline float64 `json:"baseline,omitempty"` // median of the baseline (0 when there is none)
	BaseName string  `json:"baseline_name,omitempty"`
	// Ratio is Subject/Baseline, the way the issue states its targets
	// (throughput ≥ 0.70 of the baseline, latency ≤ 2×); RatioNote says
	// which direction is better when that is not obvious.
	Ratio     float64 `json:"ratio,omitempty"`
	RatioNote string  `json:"ratio_note,omitempty"`
	Target    string  `json:"target,omitempty"`
	Met       *bool   `json:"met,omitempty"` // nil when the target is "report"
	Notes     string  `json:"notes,omitempty"`
	Samples   []Pair  `json:"samples,omitempty"`
}

// Pair is one alternating round: the baseline then the subject.
type Pair struct {
	Baseline float64 `json:"baseline"`
	Subject  float64 `json:"subject"`
}

func (r *Result) line() string {
	s := fmt.Sprintf("%-40s %12.2f %-6s", r.Name, r.Subject, r.Unit)
	if r.BaseName != "" {
		s += fmt.Sprintf(" vs %s %.2f → ratio %.2f", r.BaseName, r.Baseline, r.Ratio)
	}
	if r.Target != "" {
		verdict := "report"
		if r.Met != nil {
			verdict = map[bool]string{true: "met", false: "MISSED"}[*r.Met]
		}
		s += fmt.Sprintf(" (target %s: %s)", r.Target, verdict)
	}
	return s
}

// Alternate runs base and subject one after the other, rounds times, and
// returns their medians with every sample. Alternating spreads the noise of
// a shared machine over both sides instead of favouring whichever ran in a
// quiet moment.
func Alternate(rounds int, base, subject func() (float64, error)) (medBase, medSubject float64, samples []Pair, err error) {
	var bs, ss []float64
	for i := 0; i < rounds; i++ {
		b, err := base()
		if err != nil {
			return 0, 0, nil, fmt.Errorf("baseline round %d: %w", i+1, err)
		}
		s, err := subject()
		if err != nil {
			return 0, 0, nil, fmt.Errorf("subject round %d: %w", i+1, err)
		}
		bs, ss = append(bs, b), append(ss, s)
		samples = append(samples, Pair{Baseline: b, Subject: s})
	}
	return Median(bs), Median(ss), samples, nil
}

// Median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// Met returns a pointer for Result.Met.
func Met(ok bool) *bool { return &ok }

// Report is everything one run measured.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Quick    bool      `json:"quick"`
	Machine  string    `json:"machine"`
	Results  []*Result `json:"results"`
	Errors   []string  `json:"errors,omitempty"`
}

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// Write stores results.json and results.md in dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the report as a table.
func (r *Report) Markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Aegis benchmark results\n\n%s · %s · %.0fs", r.Started.Format(time.RFC3339), r.Machine, r.Finished.Sub(r.Started).Seconds())
	if r.Quick {
		sb.WriteString(" · **quick mode: checks the harness only; the numbers mean nothing**")
	}
	sb.WriteString("\n\n| # | measurement | subject | baseline | ratio | target | verdict |\n|---|---|---|---|---|---|---|\n")
	for _, x := range r.Results {
		base, ratio := "—", "—"
		if x.BaseName != "" {
			base = fmt.Sprintf("%s: %.2f %s", x.BaseName, x.Baseline, x.Unit)
			ratio = fmt.Sprintf("%.2f", x.Ratio)
			if x.RatioNote != "" {
				ratio += " (" + x.RatioNote + ")"
			}
		}
		verdict := "report"
		if x.Met != nil {
			verdict = map[bool]string{true: "met", false: "**missed**"}[*x.Met]
		}
		fmt.Fprintf(&sb, "| %d | %s | %.2f %s | %s | %s | %s | %s |\n", x.Scenario, x.Name, x.Subject, x.Unit, base, ratio, x.Target, verdict)
	}
	for _, x := range r.Results {
		if x.Notes != "" {
			fmt.Fprintf(&sb, "\n- %d. %s: %s", x.Scenario, x.Name, x.Notes)
		}
	}
	if len(r.Errors) > 0 {
		sb.WriteString("\n\n## Errors\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&sb, "\n- %s", e)
		}
	}
	sb.WriteString("\n")
	return sb.String()
}
