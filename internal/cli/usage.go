package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// usageCommand is `aegis usage`: what apps, functions and callers used,
// or with --budgets the budgets in their current window.
func (c *cli) usageCommand() *cobra.Command {
	var (
		out     format
		q       client.UsageQuery
		budgets bool
	)
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show usage by app, function and caller, or the budgets' state (--budgets)",
		Long: "Usage counts invocations, GB-seconds (memory limit in GiB × wall time) and egress bytes,\n" +
			"charged to the caller that caused them (docs/budgets.md). Rows add up the hours of --since;\n" +
			"--by function adds the callers of a function up (caller \"\"), --by caller the functions\n" +
			"of an app (function \"\"). --budgets shows each budget's use, limit and reset time instead.",
		Example: "  aegis usage --app travel-diary --by caller --since 24h\n  aegis usage --budgets -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.By != "" && q.By != "function" && q.By != "caller" {
				return usagef("--by must be function or caller")
			}
			if q.Since <= 0 {
				return usagef("--since must be a positive duration, such as 24h")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if budgets {
				states, err := ac.Budgets(cmd.Context(), q.App)
				if err != nil {
					return fmt.Errorf("read budgets: %w", err)
				}
				return writeBudgets(c.stdout, out, states)
			}
			rows, err := ac.Usage(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("read usage: %w", err)
			}
			return writeUsage(c.stdout, out, rows)
		},
	}
	cmd.Flags().StringVar(&q.App, "app", "", "only this app")
	cmd.Flags().StringVar(&q.By, "by", "", "add up by function (callers summed) or caller (functions summed)")
	cmd.Flags().DurationVar(&q.Since, "since", 24*time.Hour, "how far back, counted in whole hours")
	cmd.Flags().BoolVar(&budgets, "budgets", false, "show the budgets in their current window instead")
	addOutputFlag(cmd, &out)
	return cmd
}

func writeUsage(w io.Writer, f format, rows []client.UsageRow) error {
	header := []string{"APP", "FUNCTION", "CALLER", "INVOCATIONS", "GB-SECONDS", "EGRESS", "REJECTED"}
	return render(w, f, rows, header, func(r client.UsageRow) []string {
		return []string{r.App, orDash(r.Function), orDash(r.Caller), strconv.FormatInt(r.Invocations, 10),
			strconv.FormatFloat(r.GBSeconds, 'f', 3, 64), strconv.FormatInt(r.EgressBytes, 10), strconv.FormatInt(r.Rejected, 10)}
	})
}

func writeBudgets(w io.Writer, f format, states []client.BudgetState) error {
	header := []string{"SCOPE", "OF", "PER", "MODE", "INVOCATIONS", "GB-SECONDS", "EGRESS", "RESETS", "STATE"}
	return render(w, f, states, header, func(s client.BudgetState) []string {
		of := s.App
		switch s.Scope {
		case "function":
			of = s.App + "/" + s.Function
		case "key":
			of = s.Key
		}
		state := "ok"
		if s.Exhausted {
			state = "exhausted"
		}
		return []string{s.Scope, of, s.Per, s.Mode,
			usedOf(strconv.FormatInt(s.Invocations, 10), s.InvocationsLimit > 0, strconv.FormatInt(s.InvocationsLimit, 10)),
			usedOf(strconv.FormatFloat(s.GBSeconds, 'f', 3, 64), s.GBSecondsLimit > 0, strconv.FormatFloat(s.GBSecondsLimit, 'f', -1, 64)),
			usedOf(strconv.FormatInt(s.EgressBytes, 10), s.EgressLimit > 0, strconv.FormatInt(s.EgressLimit, 10)),
			timeCell(s.ResetsAt), state}
	})
}

// usedOf writes "used/limit", or the use alone for an amount without one.
func usedOf(used string, capped bool, limit string) string {
	if !capped {
		return used
	}
	return used + "/" + limit
}
