package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/guard/rulefile"
)

func (c *cli) guardApplyCommand() *cobra.Command {
	var (
		dryRun bool
		out    format
	)
	cmd := &cobra.Command{
		Use:   "apply FILE",
		Short: "Apply a rule file (guard.yaml) on every server (operator role or above)",
		Long: "The file's rules replace the defaults of the same name (disabled: true turns one off) and\n" +
			"add the others. The server reached applies it at once, the others within a second. A file\n" +
			"that weakens a default (a threshold raised, a rule disabled, a block shortened…) needs a\n" +
			"current code of the authenticator (--otp). With --dry-run the file is checked and what it\n" +
			"would change printed, and nothing is stored. The rule file's format is in docs/guard.md.",
		Example: "  aegis guard apply guard.yaml --dry-run\n  aegis guard apply guard.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readRuleFile(args[0])
			if err != nil {
				return err
			}
			// Checked here first, so a mistake names the file as the
			// operator wrote it, and costs no round trip.
			if _, err := rulefile.Parse(args[0], text); err != nil {
				return err
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			res, err := ac.ApplyGuardRules(cmd.Context(), text, dryRun)
			if err != nil {
				return fmt.Errorf("apply %s: %w", args[0], err)
			}
			if out == formatJSON {
				return writeJSON(c.stdout, res)
			}
			return writeApplied(c.stdout, args[0], res)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and print what it would change; store nothing")
	addOutputFlag(cmd, &out)
	return cmd
}

// readRuleFile reads at most one byte more than a rule file may hold, so
// Parse can say it is too large without reading a huge file whole.
func readRuleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read rule file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, rulefile.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read rule file %s: %w", path, err)
	}
	return b, nil
}

// writeApplied says what a rule file changed (or would), and how it
// weakens the defaults.
func writeApplied(w io.Writer, file string, res *client.GuardRulesApplied) error {
	var b strings.Builder
	switch {
	case res.DryRun:
		fmt.Fprintf(&b, "dry run: %s is valid; nothing was stored\n", file)
	default:
		fmt.Fprintf(&b, "applied %s on every server (by %s)\n", file, res.AppliedBy)
	}
	if len(res.Changes) == 0 {
		b.WriteString("no rule changes\n")
	}
	for _, ch := range res.Changes {
		fmt.Fprintf(&b, "  %-8s %s\n", ch.Change, ch.Rule)
		for _, f := range ch.Fields {
			fmt.Fprintf(&b, "             %s\n", f)
		}
	}
	if len(res.Weakenings) > 0 {
		what := "weakens the defaults (step-up accepted):"
		if res.DryRun {
			what = "weakens the defaults: applying it needs a step-up code (--otp) when an authenticator is enrolled:"
		}
		b.WriteString(what + "\n")
		for _, s := range res.Weakenings {
			b.WriteString("  " + s + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rulesFormat is -o of `aegis guard rules`: a table, JSON, or a rule file.
type rulesFormat string

const formatYAML rulesFormat = "yaml"

func (f *rulesFormat) String() string { return string(*f) }
func (f *rulesFormat) Type() string   { return "format" }
func (f *rulesFormat) Set(s string) error {
	switch s {
	case string(formatTable), string(formatJSON), string(formatYAML):
		*f = rulesFormat(s)
		return nil
	}
	return errors.New("must be table, json or yaml")
}

func (c *cli) guardRulesCommand() *cobra.Command {
	out := rulesFormat(formatTable)
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Show the guard's rules in force and the rule file applied",
		Long: "Every rule in force on the server reached: the defaults and the applied rule file's, each\n" +
			"with its source. -o yaml writes them as a rule file `aegis guard apply` takes back.",
		Example: "  aegis guard rules\n  aegis guard rules -o yaml\n  aegis guard rules -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			res, err := ac.GuardRules(cmd.Context())
			if err != nil {
				return fmt.Errorf("read guard rules: %w", err)
			}
			switch out {
			case rulesFormat(formatJSON):
				res.Rules = nonNil(res.Rules)
				return writeJSON(c.stdout, res)
			case formatYAML:
				text, err := rulefile.FormatAPI(res.Rules)
				if err != nil {
					return fmt.Errorf("read guard rules: %w", err)
				}
				_, err = c.stdout.Write(text)
				return err
			}
			return writeGuardRules(c.stdout, res)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or yaml (a rule file)")
	return cmd
}

func writeGuardRules(w io.Writer, res *client.GuardRules) error {
	if res.AppliedAt != nil {
		fmt.Fprintf(w, "rule file applied by %s at %s\n", res.AppliedBy, timeCell(*res.AppliedAt))
	} else {
		fmt.Fprintln(w, "no rule file applied")
	}
	header := []string{"RULE", "SOURCE", "SIGNALS", "GROUP BY", "THRESHOLD", "WINDOW", "THEN"}
	return render(w, formatTable, res.Rules, header, func(r client.GuardRule) []string {
		if r.Disabled {
			return []string{r.Name, r.Source, "disabled", "-", "-", "-", "-"}
		}
		threshold := strconv.Itoa(r.Threshold)
		if r.Measure == "gb_seconds" {
			threshold += " GB-s"
		}
		if r.Baseline > 0 {
			threshold += " and " + strconv.FormatFloat(r.Baseline, 'f', -1, 64) + "x baseline"
		}
		window := shortDuration(r.Window)
		if r.Learning != "" {
			window += " (learning " + shortDuration(r.Learning) + ")"
		}
		then := make([]string, len(r.Then))
		for i, a := range r.Then {
			then[i] = a.Action + " " + shortDuration(a.Duration)
		}
		return []string{r.Name, r.Source, strings.Join(r.Signals, ","), r.GroupBy, threshold, window, strings.Join(then, ", ")}
	})
}

// shortDuration writes a Go duration as a rule file would: "15m", not
// "15m0s".
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return orDash(s)
	}
	return rulefile.FormatDuration(d)
}
