// Package scan owns the deploy gate's vocabulary: a Finding one of its
// checks reports, the Severity findings compare by, the Rule each check
// documents, waivers (a finding accepted with a reason), and the decision
// whether a set of findings stops a deploy or a CI run. The checks
// themselves live in the packages under it (vuln, secrets, rules); this
// package runs them over an app and holds what they share.
package scan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity orders findings. The zero value is no severity at all; a check
// that cannot tell a finding's severity says so with High, the issue's
// rule for a vulnerability without one.
type Severity int

const (
	SeverityNone Severity = iota
	Info
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"none", "info", "low", "medium", "high", "critical"}

// String is the severity's name as users write it: "high".
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity by name, in any case. "none" is accepted
// as a level (--fail-on none: nothing fails).
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return SeverityNone, fmt.Errorf("unknown severity %q: want one of %s", name, strings.Join(severityNames[:], ", "))
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Rule is one thing the gate checks, documented once: its id (what a
// finding's Rule names), the severity its findings have unless a finding
// says otherwise, a one-line title and how to fix what it finds.
type Rule struct {
	ID       string
	Severity Severity
	Title    string
	Fix      string
}

// Finding is one problem a check found. Its JSON is what `aegis scan -o
// json` prints, an array of these.
type Finding struct {
	// ID names this finding stably across runs, so that it can be accepted
	// (--accept ID): the OSV id for a vulnerability (GO-2024-1234), the
	// rule and where it fired otherwise (public-route-no-rate:orders:0).
	ID       string   `json:"id"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Function is the function the finding concerns, "" when it concerns
	// the app (its manifest as a whole) or a file of no function.
	Function string `json:"function"`
	// File is relative to the scanned app's directory, with slashes; Line
	// is 1-based, 0 when the finding has no line.
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Accepted is set when the finding was waived (--accept ID --reason).
	Accepted *Waiver `json:"accepted,omitempty"`
}

// Waiver accepts one finding, by id, for a stated reason.
type Waiver struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// MaxReason bounds a waiver's reason: it is recorded in the audit log.
const MaxReason = 500

// Validate refuses a waiver without an id or a reason, or with a reason
// too long to record.
func (w Waiver) Validate() error {
	switch {
	case strings.TrimSpace(w.ID) == "":
		return fmt.Errorf("a waiver needs the id of the finding it accepts")
	case strings.TrimSpace(w.Reason) == "":
		return fmt.Errorf("accepting %s needs a reason (--reason TEXT): it is recorded", w.ID)
	case len(w.Reason) > MaxReason:
		return fmt.Errorf("the reason for accepting %s is longer than %d bytes", w.ID, MaxReason)
	}
	return nil
}

// Accept marks the findings each waiver names as accepted and returns the
// waivers that named no finding, so a caller can say an --accept was not
// needed (or misspelt).
func Accept(findings []Finding, waivers []Waiver) (unused []Waiver) {
	for _, w := range waivers {
		used := false
		for i := range findings {
			if findings[i].ID == w.ID {
				findings[i].Accepted = &Waiver{ID: w.ID, Reason: w.Reason}
				used = true
			}
		}
		if !used {
			unused = append(unused, w)
		}
	}
	return unused
}

// Blocking returns the findings at or above level that were not accepted:
// those that stop a deploy, or make `aegis scan` exit 1. A level of
// SeverityNone blocks nothing.
func Blocking(findings []Finding, level Severity) []Finding {
	if level == SeverityNone {
		return nil
	}
	var out []Finding
	for _, f := range findings {
		if f.Accepted == nil && f.Severity >= level {
			out = append(out, f)
		}
	}
	return out
}

// Sort orders findings the way every output prints them: most severe
// first, then by file, line, rule and id, so two runs print the same.
func Sort(findings []Finding) {
	slices.SortStableFunc(findings, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.ID, b.ID),
		)
	})
}
