// Package report writes the deploy gate's findings for people and for
// machines: text for a terminal, a JSON array for scripts, and SARIF 2.1.0
// for code-scanning dashboards (GitHub code scanning and the like), the
// last through go-sarif, the only package importing it.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

// Text writes one block per finding, most severe first, then a summary
// line: how many findings of each severity, and how many of them stop at
// failOn (scan.SeverityNone: nothing stops).
func Text(w io.Writer, findings []scan.Finding, failOn scan.Severity) error {
	sorted := append([]scan.Finding(nil), findings...)
	scan.Sort(sorted)
	var b strings.Builder
	for _, f := range sorted {
		where := f.File
		if f.Line > 0 {
			where += ":" + strconv.Itoa(f.Line)
		}
		if where == "" {
			where = "(app)"
		}
		fmt.Fprintf(&b, "%-8s %s  %s\n", strings.ToUpper(f.Severity.String()), f.ID, where)
		if f.Function != "" {
			fmt.Fprintf(&b, "         function %s, rule %s\n", f.Function, f.Rule)
		} else {
			fmt.Fprintf(&b, "         rule %s\n", f.Rule)
		}
		fmt.Fprintf(&b, "         %s\n", f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, "         fix: %s\n", indentLines(f.Fix, "              "))
		}
		if f.Accepted != nil {
			fmt.Fprintf(&b, "         accepted: %s\n", f.Accepted.Reason)
		}
	}
	fmt.Fprintln(&b, Summary(findings, failOn))
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is one line: the findings by severity and what stops at failOn,
// "no findings" when there are none.
func Summary(findings []scan.Finding, failOn scan.Severity) string {
	if len(findings) == 0 {
		return "no findings"
	}
	counts := map[scan.Severity]int{}
	accepted := 0
	for _, f := range findings {
		counts[f.Severity]++
		if f.Accepted != nil {
			accepted++
		}
	}
	var parts []string
	for s := scan.Critical; s >= scan.Info; s-- {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	line := fmt.Sprintf("%d findings: %s", len(findings), strings.Join(parts, ", "))
	if accepted > 0 {
		line += fmt.Sprintf("; %d accepted", accepted)
	}
	if failOn != scan.SeverityNone {
		line += fmt.Sprintf("; %d at or above %s", len(scan.Blocking(findings, failOn)), failOn)
	}
	return line
}

func indentLines(s, indent string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent)
}

// JSON writes the findings as one JSON array, most severe first; no
// findings is [].
func JSON(w io.Writer, findings []scan.Finding) error {
	sorted := append([]scan.Finding{}, findings...)
	scan.Sort(sorted)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sorted)
}

// InformationURI is where the SARIF log says the rules are documented.
const InformationURI = "https://github.com/aegis-platform/aegis/blob/main/docs/scan.md"

// SARIF writes a SARIF 2.1.0 log with one run of the tool "aegis" at
// version: every rule the checks know (so a dashboard can show what was
// checked and found nothing), and one result per finding. A result's
// level is the SARIF level of its severity, its properties carry the
// severity by name and GitHub's numeric security-severity, its partial
// fingerprint is the finding's id (what --accept names), and an accepted
// finding carries an external suppression with the reason.
func SARIF(w io.Writer, findings []scan.Finding, rules []scan.Rule, version string) error {
	run := sarif.NewRunWithInformationURI("aegis", InformationURI)
	run.Tool.Driver.WithVersion(version).WithSemanticVersion(strings.TrimPrefix(version, "v"))
	known := map[string]bool{}
	for _, r := range rules {
		addRule(run, r)
		known[r.ID] = true
	}
	sorted := append([]scan.Finding(nil), findings...)
	scan.Sort(sorted)
	for _, f := range sorted {
		if !known[f.Rule] {
			// A finding whose rule a check reports under a more precise id
			// (secret/aws-access-token) than the one it documents: the
			// result still needs its rule in the run.
			addRule(run, scan.Rule{ID: f.Rule, Severity: f.Severity, Title: f.Rule})
			known[f.Rule] = true
		}
		text := f.Message
		if f.Function != "" {
			text = "function " + f.Function + ": " + text
		}
		res := run.CreateResultForRule(f.Rule).
			WithLevel(level(f.Severity)).
			WithMessage(sarif.NewTextMessage(text)).
			WithPartialFingerprints(map[string]string{"aegisFindingId/v1": f.ID}).
			WithProperties(sarif.NewPropertyBag().
				Add("id", f.ID).
				Add("severity", f.Severity.String()).
				Add("security-severity", securitySeverity(f.Severity)).
				Add("function", f.Function))
		if f.File != "" {
			loc := sarif.NewPhysicalLocation().WithArtifactLocation(
				sarif.NewArtifactLocation().WithURI(f.File).WithURIBaseID("%SRCROOT%"))
			if f.Line > 0 {
				loc.WithRegion(sarif.NewRegion().WithStartLine(f.Line))
			}
			res.AddLocation(sarif.NewLocationWithPhysicalLocation(loc))
		}
		if f.Accepted != nil {
			res.AddSuppression(sarif.NewSuppression().WithKind("external").WithStatus("accepted").
				WithJustification(f.Accepted.Reason))
		}
	}
	log := sarif.NewReport()
	log.AddRun(run)
	return log.PrettyWrite(w)
}

func addRule(run *sarif.Run, r scan.Rule) {
	d := run.AddRule(r.ID).
		WithName(ruleName(r.ID)).
		WithShortDescription(sarif.NewMultiformatMessageString().WithText(r.Title)).
		WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(level(r.Severity))).
		WithProperties(sarif.NewPropertyBag().
			Add("security-severity", securitySeverity(r.Severity)).
			AddTag("security"))
	if r.Fix != "" {
		d.WithHelp(sarif.NewMultiformatMessageString().WithText(r.Fix))
	}
}

// ruleName is the rule id in the UpperCamelCase SARIF viewers show as a
// name: public-route-no-rate → PublicRouteNoRate.
func ruleName(id string) string {
	var b strings.Builder
	up := true
	for _, r := range id {
		if r == '-' || r == '/' || r == '_' || r == '.' {
			up = true
			continue
		}
		if up {
			b.WriteString(strings.ToUpper(string(r)))
			up = false
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// level maps a severity onto SARIF's three levels.
func level(s scan.Severity) string {
	switch {
	case s >= scan.High:
		return sarif.LevelError
	case s == scan.Medium:
		return sarif.LevelWarning
	case s == scan.SeverityNone:
		return sarif.LevelNone
	}
	return sarif.LevelNote
}

// securitySeverity is the numeric score GitHub code scanning reads from a
// rule's or result's properties to rank security results (9.0 and up is
// critical, 7.0 high, 4.0 medium, above 0 low).
func securitySeverity(s scan.Severity) string {
	switch s {
	case scan.Critical:
		return "9.5"
	case scan.High:
		return "8.0"
	case scan.Medium:
		return "5.5"
	case scan.Low:
		return "3.0"
	}
	return "0.0"
}
