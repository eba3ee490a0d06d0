package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/internal/gate"
	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/internal/scan/report"
)

// scanFormat is the value of scan's -o: text, json or sarif.
type scanFormat string

func (f *scanFormat) String() string { return string(*f) }
func (f *scanFormat) Type() string   { return "format" }
func (f *scanFormat) Set(s string) error {
	switch s {
	case "text", "json", "sarif":
		*f = scanFormat(s)
		return nil
	}
	return fmt.Errorf("must be text, json or sarif")
}

// severityFlag is a --fail-on level, checked when the flag is parsed.
type severityFlag struct{ scan.Severity }

func (s *severityFlag) Set(v string) error {
	sev, err := scan.ParseSeverity(v)
	if err != nil {
		return err
	}
	s.Severity = sev
	return nil
}
func (s *severityFlag) Type() string { return "level" }

// findingsError ends a scan or deploy that found something at or above
// its level: exit 1, the findings already printed.
type findingsError struct {
	blocking int
	level    scan.Severity
	deploy   bool
}

func (e findingsError) Error() string {
	if e.deploy {
		return fmt.Sprintf("deploy refused: %d findings at or above %s (fix them, or accept one with --accept ID --reason TEXT)", e.blocking, e.level)
	}
	return fmt.Sprintf("%d findings at or above %s", e.blocking, e.level)
}

func (c *cli) scanCommand() *cobra.Command {
	var (
		file   string
		out    = scanFormat("text")
		failOn = severityFlag{scan.High}
		vulndb string
	)
	cmd := &cobra.Command{
		Use:   "scan [DIR]",
		Short: "Check an app for vulnerable dependencies, secrets in code and risky manifest settings",
		Long: `Check an app before it is deployed: its manifest's risk rules, secrets written
into its sources, manifest and schema files, and known vulnerabilities in the
dependencies of its Go functions (reachability-aware: a vulnerable function your
code calls is told apart from one it does not), looked up in the OSV database
given by --vulndb (a directory or URL; default $AEGIS_VULNDB; none: dependencies
are not checked, and a note says so). Nothing is built and nothing is sent.

Exits 1 when a finding is at or above --fail-on (default high; "none" never
fails), 2 on a usage error. -o sarif writes SARIF 2.1.0 for code-scanning
dashboards. docs/scan.md lists every rule.`,
		Example: `  aegis scan examples/travel-diary
  aegis scan -o json --fail-on critical
  aegis scan --vulndb /srv/osv -o sarif`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := manifestArg(cmd, file, args)
			if err != nil {
				return err
			}
			if vulndb == "" {
				vulndb = c.env("AEGIS_VULNDB")
			}
			app, err := scan.LoadApp(file)
			if err != nil {
				return err
			}
			if err := checkVulnDB(vulndb); err != nil {
				return err
			}
			res, err := gate.Source(cmd.Context(), app, gate.Options{VulnDB: vulndb})
			if err != nil {
				return err
			}
			if err := writeFindings(c.stdout, out, res.Findings); err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(c.stderr, "note: %s\n", n)
			}
			if n := len(scan.Blocking(res.Findings, failOn.Severity)); n > 0 {
				return findingsError{blocking: n, level: failOn.Severity}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", defaultManifest, "manifest of the app to scan")
	cmd.Flags().VarP(&out, "output", "o", "output format: text, json or sarif")
	cmd.Flags().Var(&failOn, "fail-on", "exit 1 when a finding is at or above this level: critical, high, medium, low, info or none")
	cmd.Flags().StringVar(&vulndb, "vulndb", "", "OSV vulnerability database: a directory or an http(s) URL (default $AEGIS_VULNDB)")
	return cmd
}

// writeFindings prints findings in the chosen format.
func writeFindings(w io.Writer, out scanFormat, findings []scan.Finding) error {
	switch out {
	case "json":
		return report.JSON(w, findings)
	case "sarif":
		return report.SARIF(w, findings, gate.Rules(), buildVersion().Version)
	}
	return report.Text(w, findings, scan.SeverityNone)
}

// checkVulnDB refuses a --vulndb that is neither an http(s) URL nor an
// existing directory, as a usage error, before anything is scanned.
func checkVulnDB(db string) error {
	if db == "" || strings.HasPrefix(db, "https://") || strings.HasPrefix(db, "http://") || strings.HasPrefix(db, "file://") {
		return nil
	}
	if strings.Contains(db, "://") {
		return usagef("--vulndb %s: want a directory, a file:// or an http(s) URL", db)
	}
	fi, err := os.Stat(filepath.Clean(db))
	if err != nil || !fi.IsDir() {
		return usagef("--vulndb %s: not a directory", db)
	}
	return nil
}

// waivers pairs each --accept with its --reason: one reason for every
// accepted finding, or one reason per --accept, in order.
func waivers(accept, reasons []string) ([]scan.Waiver, error) {
	if len(accept) == 0 {
		if len(reasons) > 0 {
			return nil, usagef("--reason without --accept ID")
		}
		return nil, nil
	}
	if len(reasons) != 1 && len(reasons) != len(accept) {
		return nil, usagef("give one --reason for every --accept, or one for all of them")
	}
	out := make([]scan.Waiver, len(accept))
	for i, id := range accept {
		reason := reasons[0]
		if len(reasons) > 1 {
			reason = reasons[i]
		}
		w := scan.Waiver{ID: id, Reason: reason}
		if err := w.Validate(); err != nil {
			return nil, usageError{err.Error()}
		}
		out[i] = w
	}
	return out, nil
}

// gateBeforeDeploy runs the gate over the app at manifestPath and its
// built modules, accepts the waivers, prints what it found to w, and
// refuses with a findingsError when something not accepted is at or
// above failOn.
func gateBeforeDeploy(cmd *cobra.Command, w io.Writer, manifestPath string, arts []build.Artifact, ws []scan.Waiver, failOn scan.Severity, vulndb string) error {
	app, err := scan.LoadApp(manifestPath)
	if err != nil {
		return err
	}
	app.Modules = map[string][]byte{}
	for _, a := range arts {
		b, err := os.ReadFile(a.Path)
		if err != nil {
			return err
		}
		app.Modules[a.Function] = b
	}
	res, err := gate.Source(cmd.Context(), app, gate.Options{VulnDB: vulndb})
	if err != nil {
		return err
	}
	for _, u := range scan.Accept(res.Findings, ws) {
		fmt.Fprintf(w, "note: --accept %s names no finding\n", u.ID)
	}
	if len(res.Findings) > 0 {
		if err := report.Text(w, res.Findings, failOn); err != nil {
			return err
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if n := len(scan.Blocking(res.Findings, failOn)); n > 0 {
		return findingsError{blocking: n, level: failOn, deploy: true}
	}
	return nil
}
