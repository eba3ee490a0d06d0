package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) webhookSecretsCommand() *cobra.Command {
	var out format
	create := &cobra.Command{
		Use:   "create APP NAME",
		Short: "Create a webhook signing secret for an app and print it (shown only this once)",
		Long: `Create a secret that signs webhooks to the app's routes with auth: [hmac] and
hmac: { secret: NAME }. Senders put

  Aegis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>

on every request, where secret is the printed value decoded from base64url.`,
		Example: `  aegis webhook-secrets create shop payments
  SECRET=$(aegis webhook-secrets create shop payments)`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			s, err := ac.CreateWebhookSecret(cmd.Context(), args[0], args[1])
			if err != nil {
				return fmt.Errorf("create webhook secret %s/%s: %w", args[0], args[1], err)
			}
			if out == formatJSON {
				return writeJSON(c.stdout, s)
			}
			_, err = fmt.Fprintln(c.stdout, s.Secret)
			return err
		},
	}
	out = formatTable
	create.Flags().VarP(&out, "output", "o", "output format: table (the secret alone) or json")
	return group("webhook-secrets", "Manage the secrets that sign webhooks to hmac routes", create)
}
