package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// guardCommand is `aegis guard`: the guard's blocks and its rules
// (docs/guard.md; the rules in guardrules.go).
func (c *cli) guardCommand() *cobra.Command {
	return group("guard", "List and lift the guard's blocks, show and apply its rules, list and follow its alerts",
		c.guardBlocksCommand(), c.guardLiftCommand(), c.guardRulesCommand(), c.guardApplyCommand(), c.guardAlertsCommand())
}

func (c *cli) guardBlocksCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "blocks",
		Short: "List the blocks in force on every server sharing the NATS",
		Long: "A block refuses a client address with 403 until it expires or is lifted; the rule that\n" +
			"placed it saw more than its threshold of signals within its window (docs/guard.md).",
		Example: "  aegis guard blocks\n  aegis guard blocks -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			blocks, err := ac.GuardBlocks(cmd.Context())
			if err != nil {
				return fmt.Errorf("list guard blocks: %w", err)
			}
			header := []string{"ID", "KIND", "TARGET", "RULE", "COUNT", "WINDOW", "CREATED", "EXPIRES"}
			return render(c.stdout, out, blocks, header, func(b client.GuardBlock) []string {
				return []string{b.ID, b.Kind, b.Target, b.Rule, strconv.Itoa(b.Count), b.Window, timeCell(b.Created), timeCell(b.Expires)}
			})
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (c *cli) guardLiftCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lift ID",
		Short: "Lift a block on every server before it expires (operator role or above)",
		Long: "The server the command reaches stops refusing at once; the others within their refresh\n" +
			"interval (one second by default). The lift is recorded in the audit log. It is a\n" +
			"dangerous change: with an authenticator enrolled it needs a current code (--otp).",
		Example: "  aegis guard lift b3f1c2d4e5a6b7c8d9e0f",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			b, err := ac.LiftGuardBlock(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("lift guard block %s: %w", args[0], err)
			}
			fmt.Fprintf(c.stdout, "lifted %s: %s %s (rule %s)\n", b.ID, b.Kind, b.Target, b.Rule)
			return nil
		},
	}
}
