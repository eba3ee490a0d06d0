// Package cli is the aegis command line: it parses arguments, calls the
// build step, the server or the admin API client, and prints the result.
// Commands hold no logic beyond that. The CLI never prints the admin token
// file's token; it prints an API key or an admin token only when asked to
// create one, and an authenticator's otpauth URI only when enrolling it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed: build, server or API error
	exitUsage   = 2 // the command line is wrong: unknown command, bad flag or arguments
)

// Defaults for the environment and flags.
const (
	defaultAdminURL = "http://127.0.0.1:8081"
	defaultDataDir  = ".aegis"
	tokenFile       = "admin.token"
)

// Run executes one aegis command line (args without the program name) and
// returns the process exit code. Everything it reads and writes goes
// through its arguments, so tests run it in-process.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	root := c.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	switch {
	case err == nil:
		return exitOK
	case !c.started || errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "aegis: %s\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	}
	if code, again := c.askStepUp(err); again {
		// The refused call changed nothing, and what ran before it in the
		// command (uploading modules, say) is idempotent: run it again.
		return Run(ctx, append([]string{"--otp", code}, args...), stdin, stdout, stderr, env)
	}
	fmt.Fprintf(stderr, "aegis: %s\n", errorMessage(err))
	return exitFailure
}

// cli is the state of one Run: its streams, its environment and the
// persistent flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string

	dataDir string // --data
	otp     string // --otp, or AEGIS_OTP

	// started is set once cobra has parsed flags and validated arguments
	// and a command begins to run: every error before that is a usage
	// error, every error after it is a failure unless it is a usageError.
	started bool
}

// usageError is a usage mistake found while a command runs, such as a
// malformed argument that cobra cannot validate.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "aegis",
		Short:         "Aegis runs functions as WebAssembly modules behind an authenticated gateway",
		SilenceErrors: true, // Run prints errors itself, once, with the right exit code
		SilenceUsage:  true, // a failing deploy is not helped by a page of usage
		PersistentPreRun: func(*cobra.Command, []string) {
			c.started = true
		},
	}
	// cobra answers --version itself; the template keeps its output the
	// same line `aegis version` prints.
	root.Version = versionLine(buildVersion())
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.PersistentFlags().StringVar(&c.dataDir, "data", defaultDataDir,
		"data directory: where the server keeps its state and admin.token")
	root.PersistentFlags().StringVar(&c.otp, "otp", "",
		"current code of the server's authenticator, for dangerous changes (step-up); default $AEGIS_OTP")

	root.AddCommand(
		c.newCommand(),
		c.upCommand(),
		c.devCommand(),
		c.serverCommand(),
		c.buildCommand(),
		c.deployCommand(),
		c.scanCommand(),
		c.rollbackCommand(),
		c.versionsCommand(),
		c.invokeCommand(),
		c.logsCommand(),
		c.traceCommand(),
		c.secretsCommand(),
		c.vaultCommand(),
		c.appsCommand(),
		c.tokensCommand(),
		c.mfaCommand(),
		c.functionsCommand(),
		c.routesCommand(),
		c.keysCommand(),
		c.webhookSecretsCommand(),
		c.dlqCommand(),
		c.usageCommand(),
		c.graphCommand(),
		c.adviseCommand(),
		c.auditCommand(),
		c.guardCommand(),
		c.clusterCommand(),
		c.backupCommand(),
		c.restoreCommand(),
		c.versionCommand(),
		c.envCommand(),
	)
	return root
}

// group is a command that only holds subcommands. NoArgs makes
// `aegis keys bogus` a usage error instead of a silent help page.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// addOutputFlag adds -o to a command that prints structured results.
func addOutputFlag(cmd *cobra.Command, f *format) {
	*f = formatTable
	cmd.Flags().VarP(f, "output", "o", "output format: table or json")
}

// adminClient returns a client for the admin API named by AEGIS_URL with
// the token from AEGIS_TOKEN or, failing that, the data directory, trusting
// the CAs clientOptions adds.
func (c *cli) adminClient() (*client.Client, error) {
	url := c.env("AEGIS_URL")
	if url == "" {
		url = defaultAdminURL
	}
	token, err := c.adminToken()
	if err != nil {
		return nil, err
	}
	opts, err := c.clientOptions(strings.TrimSpace(c.env("AEGIS_TOKEN")) == "")
	if err != nil {
		return nil, err
	}
	return client.New(url, token, append(opts, c.otpOptions()...)...), nil
}

// otpOptions send the step-up code of --otp or, failing that, AEGIS_OTP.
// The server looks at it only for a dangerous change.
func (c *cli) otpOptions() []client.Option {
	code := c.otpCode()
	if code == "" {
		return nil
	}
	return []client.Option{client.WithOTP(code)}
}

// otpCode is the step-up code of --otp or, failing that, AEGIS_OTP.
func (c *cli) otpCode() string {
	if code := strings.TrimSpace(c.otp); code != "" {
		return code
	}
	return strings.TrimSpace(c.env("AEGIS_OTP"))
}

// adminToken prefers the environment so that a remote server can be used
// without a local data directory.
func (c *cli) adminToken() (string, error) {
	if t := strings.TrimSpace(c.env("AEGIS_TOKEN")); t != "" {
		return t, nil
	}
	return readTokenFile(filepath.Join(c.dataDir, tokenFile))
}

// readTokenFile reads the admin token the server wrote at start-up.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no admin token: set AEGIS_TOKEN, or point --data at the data directory of a running server (%s does not exist)", path)
	}
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("read admin token: %s is empty", path)
	}
	return t, nil
}

// errorMessage is err's text plus a hint for the most common mistake:
// no server listening where the CLI looks.
func errorMessage(err error) string {
	msg := err.Error()
	if errors.Is(err, syscall.ECONNREFUSED) {
		msg += "\n  is the server running? Start one with `aegis server`, or set AEGIS_URL."
	}
	return msg + tlsHint(err)
}
