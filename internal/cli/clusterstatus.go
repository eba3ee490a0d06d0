package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// clusterStatusCommand is `aegis cluster status`: the servers sharing the
// NATS, from their heartbeats, and the JetStream meta leader
// (docs/cluster.md).
func (c *cli) clusterStatusCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the servers of the cluster, their health and the JetStream meta leader",
		Long: "Every server writes a heartbeat every 5 seconds into a bucket all of them share; a server\n" +
			"whose last heartbeat is older than 15 seconds (stopped, killed, cut off) is not listed.\n" +
			"HEALTH is ok, or degraded when the server's NATS connection is down or its last heartbeat\n" +
			"could not be written. The meta leader is the JetStream server that places streams on the\n" +
			"others, as the server asked sees it (none when NATS is not clustered or has no quorum).",
		Example: "  aegis cluster status\n  aegis cluster status -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			st, err := ac.ClusterStatus(cmd.Context())
			if err != nil {
				return fmt.Errorf("cluster status: %w", err)
			}
			if out == formatJSON {
				st.Servers = nonNil(st.Servers)
				return writeJSON(c.stdout, st)
			}
			return writeClusterStatus(c.stdout, st, time.Now())
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

// writeClusterStatus writes the servers as a table, then the meta leader,
// then, when the answer is incomplete, why only one server is listed.
func writeClusterStatus(w io.Writer, st *client.ClusterStatus, now time.Time) error {
	rows := make([][]string, 0, len(st.Servers))
	for _, s := range st.Servers {
		rows = append(rows, []string{orDash(s.Name), orDash(s.Address), orDash(s.Admin), orDash(s.Version),
			orDash(s.Health), ago(s.LastSeen, now)})
	}
	if err := writeTable(w, []string{"NAME", "ADDRESS", "ADMIN", "VERSION", "HEALTH", "LAST SEEN"}, rows); err != nil {
		return err
	}
	leader := st.MetaLeader
	if leader == "" {
		leader = "none (not clustered, no quorum, or an external NATS)"
	}
	if _, err := fmt.Fprintf(w, "\nJetStream meta leader: %s\n", leader); err != nil {
		return err
	}
	if st.Incomplete {
		_, err := fmt.Fprintln(w, "Incomplete: the other servers' heartbeats could not be read (JetStream without quorum?); only the server asked is listed.")
		return err
	}
	return nil
}

// ago is how long before now t was, in whole seconds ("3s ago").
func ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := max(now.Sub(*t).Round(time.Second), 0)
	return d.String() + " ago"
}
