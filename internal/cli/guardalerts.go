package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// guardAlertsCommand is `aegis guard alerts`: the guard's incidents,
// listed or followed (docs/guard.md, "Alerts").
func (c *cli) guardAlertsCommand() *cobra.Command {
	var (
		out    format
		since  sinceFlag
		follow bool
		q      client.GuardAlertQuery
	)
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List the guard's alerts, one per incident, or follow new ones",
		Long: "An alert is one incident: a rule that fired on an address, a key or a function, what it\n" +
			"counted and what it did. Every server sharing the NATS lists the same alerts; they are kept\n" +
			"for 30 days. With -f the command keeps printing new alerts until interrupted; with -o json\n" +
			"it prints a JSON array, or with -f one JSON object a line.",
		Example: "  aegis guard alerts\n  aegis guard alerts --since 1h -o json\n  aegis guard alerts --follow",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q.Since = since.t
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if !follow {
				alerts, err := ac.GuardAlerts(cmd.Context(), q)
				if err != nil {
					return fmt.Errorf("list guard alerts: %w", err)
				}
				return render(c.stdout, out, alerts, alertHeader, alertRow)
			}
			// Ctrl-C is how a follow ends, so it is not an error.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = ac.FollowGuardAlerts(ctx, q, func(a client.GuardAlert) error { return writeAlertLine(c.stdout, out, a) })
			if err != nil && ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("follow guard alerts: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().Var(&since, "since", "only alerts raised since: a duration back from now (1h) or an RFC 3339 time")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new alerts until interrupted")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many of the newest alerts (0: the server's default, 100)")
	addOutputFlag(cmd, &out)
	return cmd
}

var alertHeader = []string{"TIME", "RULE", "TARGET", "COUNT", "WINDOW", "ACTIONS", "ID", "MESSAGE"}

func alertRow(a client.GuardAlert) []string {
	return []string{timeCell(a.Time), a.Rule, oneLine(a.Target), strconv.FormatFloat(a.Count, 'f', -1, 64), orDash(a.Window),
		oneLine(strings.Join(a.Actions, ", ")), a.ID, oneLine(a.Message)}
}

// writeAlertLine writes one followed alert: a JSON object a line, or the
// table's columns, space-separated (a stream has no width to align to).
func writeAlertLine(w io.Writer, f format, a client.GuardAlert) error {
	if f == formatJSON {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(w, strings.Join(alertRow(a), "  "))
	return err
}
