package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/sdkproxy"
	"github.com/aegis-platform/aegis/manifest"
)

func (c *cli) rollbackCommand() *cobra.Command {
	var (
		out format
		to  string
	)
	cmd := &cobra.Command{
		Use:   "rollback APP",
		Short: "Make an earlier version of an app active again",
		Long: `Make an earlier version of an app active again: the one active before the
current one, or with --to any version 'aegis versions APP' lists (older or newer
than the active one). Going back is compared with the active version like a
deploy: a version that opens up more needs --otp when an authenticator is
enrolled.`,
		Example: `  aegis rollback travel-diary
  aegis rollback travel-diary --to v3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			version := 0
			if cmd.Flags().Changed("to") {
				n, err := parseVersion(to)
				if err != nil {
					return err
				}
				version = n
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			res, err := ac.RollbackTo(cmd.Context(), args[0], version)
			if err != nil {
				return fmt.Errorf("rollback %s: %w", args[0], err)
			}
			if out == formatJSON {
				return writeJSON(c.stdout, res)
			}
			if res.Unchanged {
				_, err = fmt.Fprintf(c.stdout, "unchanged: %s %s is already active\n", res.App, res.Version)
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "%s rolled back to %s\n", res.App, res.Version)
			return err
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "version to make active, as 'aegis versions' shows it (v3, or 3); default the previous one")
	addOutputFlag(cmd, &out)
	return cmd
}

// parseVersion reads a version as users write it: "v3" or "3".
func parseVersion(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || n < 1 {
		return 0, usagef("invalid version %q: use a version 'aegis versions APP' lists, such as v3", s)
	}
	return n, nil
}

func (c *cli) versionsCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "versions APP",
		Short: "List the recorded versions of an app, each one a rollback target",
		Long: `List the recorded versions of an app, oldest first: when each was deployed,
which one is active (*), the manifest file it came from and each function's
module digest. 'aegis rollback APP --to VERSION' makes any of them active.`,
		Example: `  aegis versions travel-diary
  aegis versions travel-diary -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			vers, err := ac.Versions(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("list versions of %s: %w", args[0], err)
			}
			return writeVersions(c.stdout, out, vers)
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (c *cli) invokeCommand() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "invoke APP FUNCTION",
		Short: "Call a function directly through the admin API and print its answer",
		Long: `Call a function directly through the admin API and print its answer body.
The body is written as is, without an added newline. When the function answers
with a status outside 2xx, the status and request id go to stderr and the exit
code is 1; when it failed and said why (the last line it logged at error level,
as the SDK does with a panic or an event handler's error), that message too.`,
		Example: `  aegis invoke travel-diary save-entry -d '{"text":"hello"}'
  aegis invoke travel-diary save-entry -d @entry.json
  echo '{"text":"hi"}' | aegis invoke travel-diary save-entry -d @-`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readData(data, c.stdin)
			if err != nil {
				return err
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			app, fn := args[0], args[1]
			res, err := ac.Invoke(cmd.Context(), app, fn, body)
			if err != nil {
				return fmt.Errorf("invoke %s/%s: %w", app, fn, err)
			}
			if _, err := c.stdout.Write(res.Body); err != nil {
				return err
			}
			if res.Status < 200 || res.Status > 299 {
				return invokeStatusError(app, fn, res)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&data, "body", "d", "", "request body: text, @FILE to read a file, or @- to read stdin")
	return cmd
}

// readData resolves -d: "@path" reads a file, "@-" reads stdin, anything
// else is the body itself (as curl does).
func readData(arg string, stdin io.Reader) ([]byte, error) {
	switch {
	case arg == "@-":
		b, err := io.ReadAll(io.LimitReader(stdin, client.MaxResponseSize))
		if err != nil {
			return nil, fmt.Errorf("read request body from stdin: %w", err)
		}
		return b, nil
	case len(arg) > 1 && arg[0] == '@':
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		return b, nil
	}
	return []byte(arg), nil
}

func invokeStatusError(app, fn string, res *client.InvokeResult) error {
	msg := fmt.Sprintf("invoke %s/%s: HTTP %d %s", app, fn, res.Status, http.StatusText(res.Status))
	if res.FunctionError != "" {
		// The function's own words beat the generic body's "function failed".
		msg += ": function failed: " + res.FunctionError
	}
	if res.RequestID != "" {
		msg += " (request id " + res.RequestID + ")"
	}
	return errors.New(msg)
}

func (c *cli) logsCommand() *cobra.Command {
	var (
		q     client.LogQuery
		out   = formatTable
		since sinceFlag
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print structured logs, optionally following new records",
		Example: `  aegis logs --app travel-diary
  aegis logs --app travel-diary --function save-entry -f
  aegis logs --trace 4bf92f3577b34da6a3ce929d0e0e4736 --since 10m
  aegis logs --limit 50 -o json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Trace != "" && !isTraceID(q.Trace) {
				return usagef("--trace: a trace id is 32 lower-case hex characters, not %q", q.Trace)
			}
			q.Since = since.t
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if q.Follow {
				// Ctrl-C is how a follow ends, so it is not an error.
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			err = ac.Logs(ctx, q, func(r client.LogRecord) error { return writeLogRecord(c.stdout, out, r) })
			if err != nil && ctx.Err() != nil && q.Follow {
				return nil
			}
			if err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&q.App, "app", "", "only records of this app")
	cmd.Flags().StringVar(&q.Function, "function", "", "only records of this function")
	cmd.Flags().StringVar(&q.Trace, "trace", "", "only records of this trace (its invocations and their lines, every app and function)")
	cmd.Flags().Var(&since, "since", "only records newer than this: a duration back from now (10m) or an RFC 3339 time")
	cmd.Flags().BoolVarP(&q.Follow, "follow", "f", false, "keep printing new records until interrupted")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many past records (0: the server's default)")
	cmd.Flags().VarP(&out, "output", "o", "output format: table (one line of text a record) or json (NDJSON)")
	return cmd
}

func (c *cli) appsCommand() *cobra.Command {
	var out format
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List deployed apps and their active versions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			apps, err := ac.Apps(cmd.Context())
			if err != nil {
				return fmt.Errorf("list apps: %w", err)
			}
			return writeApps(c.stdout, out, apps)
		},
	}
	addOutputFlag(list, &out)

	del := &cobra.Command{
		Use:   "delete APP",
		Short: "Remove an app: its routes, triggers and versions (its data is kept)",
		Long: `Remove an app: its routes stop answering (404), its event, object and
schedule triggers stop, and its versions are forgotten, so a later deploy of the
same name starts at v1. Its tables, objects and webhook secrets are kept.
Deleting is a dangerous change: with an authenticator enrolled it needs --otp.`,
		Example: "  aegis apps delete travel-diary --otp 123456",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if err := ac.DeleteApp(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete app %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(c.stdout, "deleted app %s\n", args[0])
			return err
		},
	}
	return group("apps", "Inspect and delete deployed apps", list, del)
}

func (c *cli) functionsCommand() *cobra.Command {
	var out format
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the functions of every app's active version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			fns, err := ac.Functions(cmd.Context())
			if err != nil {
				return fmt.Errorf("list functions: %w", err)
			}
			return writeFunctions(c.stdout, out, fns)
		},
	}
	addOutputFlag(list, &out)
	return group("functions", "Inspect deployed functions", list)
}

func (c *cli) routesCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "List the HTTP routes the gateway serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			routes, err := ac.Routes(cmd.Context())
			if err != nil {
				return fmt.Errorf("list routes: %w", err)
			}
			return writeRoutes(c.stdout, out, routes)
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (c *cli) keysCommand() *cobra.Command {
	var (
		createOut, listOut, rotateOut format
		scopes, labels                []string
		expiresIn, overlap            time.Duration
		rate                          manifest.Rate
		burst                         int
		budget                        manifest.Quota
	)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key for the gateway and print it (shown only this once)",
		Example: `  aegis keys create mobile-app
  KEY=$(aegis keys create ci)
  aegis keys create diary-client --scope diary --scope photos/make-thumbnail --expires-in 720h --label owner=mobile
  aegis keys create ci -o json
  aegis keys create partner --rate 10/s --burst 20 --budget 1000/day`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkBurst(args[0], cmd.Flags().Changed("burst"), burst, rate); err != nil {
				return err
			}
			opts := client.KeyOptions{Scopes: scopes, ExpiresIn: expiresIn, Rate: rate, Burst: burst, Budget: budget}
			if expiresIn < 0 {
				return fmt.Errorf("create key %s: --expires-in must be positive", args[0])
			}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("create key %s: --label %q: want key=value", args[0], l)
				}
				if opts.Labels == nil {
					opts.Labels = map[string]string{}
				}
				opts.Labels[k] = v
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			k, err := ac.CreateKeyWithOptions(cmd.Context(), args[0], opts)
			if err != nil {
				return fmt.Errorf("create key %s: %w", args[0], err)
			}
			// Only the key, so that KEY=$(aegis keys create x) just works.
			if createOut == formatJSON {
				return writeJSON(c.stdout, k)
			}
			_, err = fmt.Fprintln(c.stdout, k.Key)
			return err
		},
	}
	createOut = formatTable
	create.Flags().VarP(&createOut, "output", "o", "output format: table (the key alone) or json")
	create.Flags().StringArrayVar(&scopes, "scope", nil, `app or app/function the key may call (repeatable; default: all)`)
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime of the key, such as 720h (default: never expires)")
	create.Flags().StringArrayVar(&labels, "label", nil, "key=value note on the key (repeatable)")
	create.Flags().Var(rateFlag{&rate}, "rate", "requests the key may make, such as 10/s, 600/m or 1000/h, counted per server (default: no limit)")
	create.Flags().IntVar(&burst, "burst", 0, "requests the key may make at once; needs --rate (default: the rate's count)")
	create.Flags().Var(quotaFlag{&budget}, "budget", "invocations the key may cause per window, such as 1000/day (also /hour, /month; default: none)")

	rotate := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Give an API key a new secret and print it; the old one works for the overlap",
		Example: `  aegis keys rotate mobile-app
  KEY=$(aegis keys rotate ci --overlap 1h)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 {
				return fmt.Errorf("rotate key %s: --overlap must not be negative", args[0])
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			k, err := ac.RotateKey(cmd.Context(), args[0], overlap)
			if err != nil {
				return fmt.Errorf("rotate key %s: %w", args[0], err)
			}
			if rotateOut == formatJSON {
				return writeJSON(c.stdout, k)
			}
			_, err = fmt.Fprintln(c.stdout, k.Key)
			return err
		},
	}
	rotateOut = formatTable
	rotate.Flags().VarP(&rotateOut, "output", "o", "output format: table (the key alone) or json")
	rotate.Flags().DurationVar(&overlap, "overlap", 24*time.Hour, "how long the old secret keeps working (0: stops at once)")

	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List API keys (never their secrets)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			keys, err := ac.Keys(cmd.Context())
			if err != nil {
				return fmt.Errorf("list keys: %w", err)
			}
			return writeKeys(c.stdout, listOut, keys)
		},
	}
	addOutputFlag(list, &listOut)

	revoke := &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke an API key; the gateway refuses it from then on",
		Example: "  aegis keys revoke mobile-app",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if err := ac.RevokeKey(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("revoke key %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(c.stdout, "revoked key %s\n", args[0])
			return err
		},
	}
	return group("keys", "Manage the API keys callers present to the gateway", create, list, rotate, revoke)
}

func (c *cli) dlqCommand() *cobra.Command {
	var (
		out format
		app string
	)
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List events that exhausted their delivery attempts",
		Example: "  aegis dlq list --app travel-diary",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			dls, err := ac.DLQ(cmd.Context(), app)
			if err != nil {
				return fmt.Errorf("list dead letters: %w", err)
			}
			return writeDeadLetters(c.stdout, out, dls)
		},
	}
	list.Flags().StringVar(&app, "app", "", "only dead letters of this app")
	addOutputFlag(list, &out)

	replay := &cobra.Command{
		Use:     "replay ID",
		Short:   "Publish a dead letter again on its topic, with its original request id",
		Example: "  aegis dlq replay 42",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return usagef("dead letter id must be a positive number, as `aegis dlq list` shows it")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if err := ac.ReplayDLQ(cmd.Context(), id); err != nil {
				return fmt.Errorf("replay %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(c.stdout, "replayed %s\n", args[0])
			return err
		},
	}
	return group("dlq", "Inspect and replay dead letters", list, replay)
}

// versionInfo is what `aegis version` prints, from the build information Go
// embeds in every binary, so no release step has to stamp it.
type versionInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"go_version"`
	// Engine is the WebAssembly engine guests run on: wazy, or wazero in
	// a binary built with -tags aegis_wazero.
	Engine string `json:"engine"`
	// SDK is the version of the Go SDK the binary carries, the one `aegis
	// new go` requires and its builds offer to the Go toolchain.
	SDK string `json:"sdk"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Engine: sandbox.EngineName, SDK: sdkproxy.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.GoVersion = bi.GoVersion
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v.Revision = s.Value
		}
	}
	return v
}

func (c *cli) versionCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			if out == formatJSON {
				return writeJSON(c.stdout, v)
			}
			_, err := fmt.Fprintln(c.stdout, versionLine(v))
			return err
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

// versionLine is what both `aegis version` and `aegis --version` print.
func versionLine(v versionInfo) string {
	s := "aegis " + v.Version
	if v.Revision != "" {
		s += " (" + v.Revision + ")"
	}
	return fmt.Sprintf("%s %s, engine %s, Go SDK %s", s, v.GoVersion, v.Engine, v.SDK)
}
