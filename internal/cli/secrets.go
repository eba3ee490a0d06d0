package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aegis-platform/aegis/client"
)

// secretsCommand is `aegis secrets`: the vault of an app. A value is never
// a flag (it would land in shell history and in the process list): it is
// read from stdin, from a file, or typed at a prompt that does not echo.
func (c *cli) secretsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Set, rotate, list and remove an app's secrets (values are never printed)",
		Long: "Secrets are sealed in the server's vault (docs/vault.md) and read by the functions\n" +
			"granted them (grants: { secrets: [NAME] }). A value is read from stdin, from\n" +
			"--from-file, or typed at a prompt without echo; from stdin one trailing newline is\n" +
			"dropped, from a file every byte is kept.",
	}
	var fromFile string
	readValue := func() ([]byte, error) {
		if fromFile != "" {
			b, err := readLimited(fromFile)
			if err != nil {
				return nil, err
			}
			return b, nil
		}
		if isTerminal(c.stdin) {
			fmt.Fprint(c.stderr, "value (not echoed): ")
			f := c.stdin.(*os.File)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			if err != nil {
				return nil, fmt.Errorf("read the value: %w", err)
			}
			return b, nil
		}
		b, err := io.ReadAll(io.LimitReader(c.stdin, client.MaxSecretSize+2))
		if err != nil {
			return nil, fmt.Errorf("read the value from stdin: %w", err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		return b, nil
	}
	// valueAndClient reads and checks the value, then finds the server.
	// The caller clears the value when done.
	valueAndClient := func() ([]byte, *client.Client, error) {
		b, err := readValue()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case len(b) == 0:
			return nil, nil, usagef("the secret's value is empty: pipe it on stdin, or use --from-file")
		case len(b) > client.MaxSecretSize:
			clear(b)
			return nil, nil, usagef("a secret is at most %d bytes", client.MaxSecretSize)
		}
		ac, err := c.adminClient()
		if err != nil {
			clear(b)
			return nil, nil, err
		}
		return b, ac, nil
	}

	set := &cobra.Command{
		Use:     "set APP NAME [--from-file FILE]",
		Short:   "Store a secret's value (a new version when it exists)",
		Example: "  printf %s \"$TOKEN\" | aegis secrets set travel-diary notify-token\n  aegis secrets set travel-diary tls-key --from-file key.pem",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, ac, err := valueAndClient()
			if err != nil {
				return err
			}
			defer clear(value)
			s, err := ac.SetSecret(cmd.Context(), args[0], args[1], value)
			if err != nil {
				return fmt.Errorf("set secret %s of %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(c.stdout, "secret %s of %s: version %d\n", s.Name, s.App, s.Version)
			return nil
		},
	}
	set.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, every byte of it")

	var overlap time.Duration
	rotate := &cobra.Command{
		Use:     "rotate APP NAME [--from-file FILE] [--overlap D]",
		Short:   "Make a new version current; the previous stays readable for --overlap",
		Example: "  printf %s \"$NEW_TOKEN\" | aegis secrets rotate travel-diary notify-token --overlap 24h",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 || overlap > 720*time.Hour {
				return usagef("--overlap must be from 0 to 720h")
			}
			value, ac, err := valueAndClient()
			if err != nil {
				return err
			}
			defer clear(value)
			s, err := ac.RotateSecret(cmd.Context(), args[0], args[1], value, overlap)
			if err != nil {
				return fmt.Errorf("rotate secret %s of %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(c.stdout, "secret %s of %s: version %d; the previous readable for %s\n", s.Name, s.App, s.Version, overlap)
			return nil
		},
	}
	rotate.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, every byte of it")
	rotate.Flags().DurationVar(&overlap, "overlap", 0, "how long the previous version stays readable (at most 720h)")

	var out format
	list := &cobra.Command{
		Use:     "list APP",
		Aliases: []string{"ls"},
		Short:   "List an app's secrets: names, versions and dates, never values",
		Example: "  aegis secrets list travel-diary",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			ss, err := ac.Secrets(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("list secrets of %s: %w", args[0], err)
			}
			header := []string{"NAME", "VERSION", "CREATED", "UPDATED", "PREVIOUS READABLE UNTIL"}
			return render(c.stdout, out, ss, header, func(s client.Secret) []string {
				until := "-"
				for _, v := range s.Versions {
					if v.ExpiresAt != nil {
						until = "v" + strconv.Itoa(v.Version) + " " + v.ExpiresAt.In(displayZone).Format(time.RFC3339)
					}
				}
				return []string{s.Name, strconv.Itoa(s.Version), s.CreatedAt.In(displayZone).Format(time.RFC3339),
					s.UpdatedAt.In(displayZone).Format(time.RFC3339), until}
			})
		},
	}
	addOutputFlag(list, &out)

	rm := &cobra.Command{
		Use:     "rm APP NAME",
		Aliases: []string{"remove"},
		Short:   "Remove a secret and every version of it",
		Example: "  aegis secrets rm travel-diary notify-token",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			if err := ac.RemoveSecret(cmd.Context(), args[0], args[1]); err != nil {
				return fmt.Errorf("remove secret %s of %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(c.stdout, "secret %s of %s removed\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(set, rotate, list, rm)
	return cmd
}

// readLimited reads a file of at most client.MaxSecretSize bytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the value: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, client.MaxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the value from %s: %w", path, err)
	}
	return b, nil
}

// vaultCommand is `aegis vault`: the vault's own keys.
func (c *cli) vaultCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "Manage the vault's master key and the apps' data keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-data-key APP",
		Short: "Seal APP's tables and objects with a new data key from now on",
		Long: "Adds a new key to APP's data keyset and makes it the one that seals what the app's\n" +
			"functions store from now on. The earlier keys stay in the keyset, so everything they\n" +
			"sealed still opens; a value moves to the new key when it is next written. Other\n" +
			"servers switch within a minute (docs/vault.md).",
		Example: "  aegis vault rotate-data-key travel-diary",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			out, err := ac.RotateDataKey(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("rotate the data key of %s: %w", args[0], err)
			}
			fmt.Fprintf(c.stdout, "data key of %s rotated: new data is sealed by a new key; the keyset holds %d keys\n", out.App, out.Keys)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-master",
		Short: "Re-wrap every data key under a new master key, while the server serves",
		Long: "The server writes a new master key next to its key file (KEY.next), re-wraps every\n" +
			"data key of the vault under it, then makes it the key file and keeps the old one as\n" +
			"KEY.previous. A dangerous change: with an authenticator enrolled it needs --otp.\n" +
			"Other servers sharing the vault must be restarted with the new key file (docs/vault.md).",
		Example: "  aegis vault rotate-master --otp 123456",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			out, err := ac.RotateMaster(cmd.Context())
			if err != nil {
				return fmt.Errorf("rotate the master key: %w", err)
			}
			fmt.Fprintf(c.stdout, "master key rotated: %d data keys re-wrapped; the new key is %s (the old kept as %s.previous): keep a copy of it outside this machine\n",
				out.Rewrapped, out.KeyFile, out.KeyFile)
			return nil
		},
	})
	return cmd
}
