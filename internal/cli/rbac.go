package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mdp/qrterminal/v3"
	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/rbac"
)

// roleFlag is --role; a role that does not exist is a flag error (exit 2).
type roleFlag string

func (f *roleFlag) String() string { return string(*f) }
func (f *roleFlag) Type() string   { return "role" }
func (f *roleFlag) Set(s string) error {
	if _, err := rbac.ParseRole(s); err != nil {
		return errors.New("must be viewer, operator, deployer or admin")
	}
	*f = roleFlag(s)
	return nil
}

func (c *cli) tokensCommand() *cobra.Command {
	var (
		createOut, listOut format
		role               roleFlag
		apps               []string
	)
	create := &cobra.Command{
		Use:   "create NAME --role ROLE",
		Short: "Create an admin token with a role and print it (shown only this once)",
		Long: `Create an admin token for the admin API and print it, and nothing else, so that
TOKEN=$(aegis tokens create ci --role deployer) works. This is the only time it
is shown. Roles, weakest first:

  viewer    read apps, functions, routes, API keys, logs, dead letters
  operator  viewer, and invoke functions, replay dead letters, roll back
  deployer  operator, and upload modules, deploy, create webhook secrets, manage secrets, delete apps
  admin     everything, including API keys, admin tokens and the authenticator

--apps limits the token to those apps: other apps are refused (403) and left
out of listings; API keys, admin tokens and the authenticator then stay out of
reach whatever the role.`,
		Example: `  aegis tokens create ci --role deployer --apps travel-diary
  TOKEN=$(aegis tokens create dashboard --role viewer)
  aegis tokens create oncall --role operator -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role == "" {
				return usagef("--role is required: viewer, operator, deployer or admin")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			tok, err := ac.CreateAdminToken(cmd.Context(), args[0], string(role), apps)
			if err != nil {
				return fmt.Errorf("create admin token %s: %w", args[0], err)
			}
			if createOut == formatJSON {
				return writeJSON(c.stdout, struct {
					Name  string `json:"name"`
					Role  string `json:"role"`
					Token string `json:"token"`
				}{tok.Name, tok.Role, tok.Token})
			}
			_, err = fmt.Fprintln(c.stdout, tok.Token)
			return err
		},
	}
	createOut = formatTable
	create.Flags().VarP(&createOut, "output", "o", `output format: table (the token alone) or json ({"name","role","token"})`)
	create.Flags().Var(&role, "role", "viewer, operator, deployer or admin (required)")
	create.Flags().StringSliceVar(&apps, "apps", nil, "apps the token may act on, comma-separated (default: all)")

	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List admin tokens (never their secrets)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			toks, err := ac.AdminTokens(cmd.Context())
			if err != nil {
				return fmt.Errorf("list admin tokens: %w", err)
			}
			return writeAdminTokens(c.stdout, listOut, toks)
		},
	}
	addOutputFlag(list, &listOut)

	revoke := &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke an admin token; the admin API refuses it at once",
		Example: "  aegis tokens revoke ci",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if err := ac.RevokeAdminToken(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("revoke admin token %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(c.stdout, "revoked admin token %s\n", args[0])
			return err
		},
	}
	return group("tokens", "Manage admin tokens: roles for the admin API", create, list, revoke)
}

func writeAdminTokens(w io.Writer, f format, toks []client.AdminToken) error {
	return render(w, f, toks, []string{"NAME", "ROLE", "APPS", "STATUS", "CREATED", "LAST USED"}, func(t client.AdminToken) []string {
		apps := "all"
		if len(t.Apps) > 0 {
			apps = strings.Join(t.Apps, ",")
		}
		status := "active"
		if t.Revoked {
			status = "revoked"
		}
		return []string{t.Name, t.Role, apps, status, timeCell(t.CreatedAt), timePtrCell(t.LastUsedAt)}
	})
}

// maxCodeLine bounds the line read for a code: a code is six digits, and a
// pasted screenful should not be buffered.
const maxCodeLine = 256

func (c *cli) mfaCommand() *cobra.Command {
	var (
		code      string
		statusOut format
	)
	enroll := &cobra.Command{
		Use:   "enroll",
		Short: "Enroll the authenticator whose codes dangerous changes need (step-up)",
		Long: `Enroll an authenticator app (RFC 6238 TOTP: Google Authenticator, 1Password,
Aegis, …) as the server's second factor. The command prints an otpauth:// URI and
its QR code; scan it, then type the code the app shows (or pass --code). From
then on dangerous changes — deleting an app, making a route public, granting a
wildcard, raising a limit, rotating an API key — need a current code, given with
--otp or AEGIS_OTP (with the server's default --step-up auto).

The URI holds the secret: it is shown only now. Replacing an enrolled
authenticator is itself a dangerous change and needs --otp with a code of the
current one.`,
		Example: `  aegis mfa enroll
  aegis mfa enroll --otp 123456          # replace the enrolled authenticator`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			e, err := ac.EnrollMFA(cmd.Context())
			if err != nil {
				return fmt.Errorf("enroll authenticator: %w", err)
			}
			fmt.Fprintln(c.stdout, "Scan this QR code with an authenticator app, or enter the URI below:")
			fmt.Fprintln(c.stdout)
			qrterminal.GenerateWithConfig(e.URI, qrterminal.Config{
				Level: qrterminal.L, Writer: c.stdout, HalfBlocks: true, QuietZone: 2,
				BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE,
				BlackWhiteChar: qrterminal.BLACK_WHITE, WhiteBlackChar: qrterminal.WHITE_BLACK,
			})
			fmt.Fprintf(c.stdout, "\n%s\n\n", e.URI)
			got := strings.TrimSpace(code)
			if got == "" {
				fmt.Fprint(c.stderr, "Code shown by the app: ")
				if got, err = readLine(c.stdin); err != nil {
					return fmt.Errorf("enroll authenticator: read code: %w", err)
				}
				if got == "" {
					return errors.New("enroll authenticator: no code given: type the app's code when asked, or pass --code")
				}
			}
			st, err := ac.ConfirmMFA(cmd.Context(), got)
			if err != nil {
				return fmt.Errorf("enroll authenticator: %w", err)
			}
			_, err = fmt.Fprintf(c.stdout, "authenticator enrolled (step-up %s): dangerous changes %s\n", st.StepUp, stepUpEffect(st))
			return err
		},
	}
	enroll.Flags().StringVar(&code, "code", "", "a current code of the new authenticator, instead of typing it when asked")

	status := &cobra.Command{
		Use:   "status",
		Short: "Show whether an authenticator is enrolled and whether dangerous changes need a code",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			st, err := ac.MFAStatus(cmd.Context())
			if err != nil {
				return fmt.Errorf("authenticator status: %w", err)
			}
			if statusOut == formatJSON {
				return writeJSON(c.stdout, st)
			}
			enrolled := "no authenticator enrolled"
			if st.Enrolled {
				enrolled = "authenticator enrolled"
				if st.EnrolledAt != nil {
					enrolled += " " + timeCell(*st.EnrolledAt)
				}
			}
			if st.Pending {
				enrolled += " (an enrollment is pending)"
			}
			_, err = fmt.Fprintf(c.stdout, "%s; step-up %s: dangerous changes %s\n", enrolled, st.StepUp, stepUpEffect(st))
			return err
		},
	}
	addOutputFlag(status, &statusOut)
	return group("mfa", "Manage the authenticator for step-up of dangerous changes", enroll, status)
}

func stepUpEffect(st *client.MFAStatus) string {
	switch {
	case st.Required && st.Enrolled:
		return "need --otp CODE"
	case st.Required:
		return "are refused until an authenticator is enrolled"
	}
	return "need no code"
}

// readLine reads one line from r, at most maxCodeLine bytes of it.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxCodeLine)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
