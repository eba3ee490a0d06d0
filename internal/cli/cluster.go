package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/internal/clusterjoin"
)

// clusterCommand is `aegis cluster`: the join file (docs/cluster.md).
func (c *cli) clusterCommand() *cobra.Command {
	return group("cluster", "Set up a cluster of servers and see its members", c.clusterInitCommand(), c.clusterStatusCommand())
}

func (c *cli) clusterInitCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "init --out FILE",
		Short: "Write a new cluster's join file: the keys every server of it shares",
		Long: "Writes the secret material every server of one installation shares (event signing key,\n" +
			"admin root token, vault master key, NATS client key, route credentials) to FILE, mode 0600.\n" +
			"Start every server with --cluster-join FILE. An existing file is never replaced.",
		Example: "  aegis cluster init --out cluster.join",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &usageError{"cluster init: --out FILE is required"}
			}
			if err := clusterjoin.Create(out, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "wrote %s (mode 0600); start every server with --cluster-join %s, and keep a copy somewhere safe: it holds the vault's master key\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the join file")
	return cmd
}
