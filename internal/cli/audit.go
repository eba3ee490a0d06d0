package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/audit"
)

// auditCommand is `aegis audit`: list, verify and export the audit log.
func (c *cli) auditCommand() *cobra.Command {
	return group("audit", "List, verify and export the tamper-evident audit log",
		c.auditListCommand(), c.auditVerifyCommand(), c.auditExportCommand())
}

func (c *cli) auditListCommand() *cobra.Command {
	var (
		out format
		q   client.AuditQuery
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit records: who changed what, from where, with what outcome",
		Long: "Each admin change has two records: its intent, written before the change is made, and its\n" +
			"outcome. Security records count refused calls and failures per minute (docs/audit.md).",
		Example: "  aegis audit list --since 1h\n  aegis audit list --limit 20 -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Since < 0 || q.Limit < 0 {
				return usagef("--since and --limit must not be negative")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			recs, err := ac.Audit(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("read audit log: %w", err)
			}
			header := []string{"SEQ", "TIME", "KIND", "ACTOR", "ADDRESS", "ACTION", "TARGET", "OUTCOME", "DETAIL"}
			return render(c.stdout, out, recs, header, func(r client.AuditRecord) []string {
				return []string{strconv.FormatUint(r.Seq, 10), timeCell(r.Time), r.Kind, orDash(r.Actor), orDash(r.Address),
					r.Action, orDash(r.Target), orDash(r.Outcome), orDash(detailCell(r.Detail))}
			})
		},
	}
	cmd.Flags().DurationVar(&q.Since, "since", 0, "only records of this recent period, such as 1h (default: all)")
	cmd.Flags().IntVar(&q.Limit, "limit", 100, "at most this many of the newest records")
	addOutputFlag(cmd, &out)
	return cmd
}

// detailCell writes a record's detail as k=v pairs, keys sorted.
func detailCell(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k]
	}
	return strings.Join(parts, " ")
}

func (c *cli) auditVerifyCommand() *cobra.Command {
	var file, key string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit chain on the server, or an exported file (--file), naming the first bad record",
		Long: "Without --file the server verifies its whole chain with its audit key. With --file an export\n" +
			"is verified here, without a server, with the public key in its first line or, better, one you\n" +
			"kept elsewhere (--public-key). Exit status 1 names the first record that was modified, deleted,\n" +
			"inserted or reordered.",
		Example: "  aegis audit verify\n  aegis audit verify --file audit.ndjson --public-key KEY",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				if key != "" {
					return usagef("--public-key applies to --file only")
				}
				ac, err := c.adminClient()
				if err != nil {
					return err
				}
				v, err := ac.AuditVerify(cmd.Context())
				if err != nil {
					return fmt.Errorf("verify audit log: %w", err)
				}
				if p := v.Problem; p != nil {
					return fmt.Errorf("audit log does not verify: record %d (position %d) %s: %s", p.Seq, p.Position, p.What, p.Detail)
				}
				fmt.Fprintf(c.stdout, "ok: %d records, %d checkpoints, last record %d (%s), public key %s\n",
					v.Records, v.Checkpoints, v.LastSeq, v.LastHash, v.PublicKey)
				return nil
			}
			return c.verifyFile(file, key)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "verify this export (aegis audit export) instead of the server's chain")
	cmd.Flags().StringVar(&key, "public-key", "", "the audit public key to trust (base64url; default: the file's header)")
	return cmd
}

// verifyFile checks an export offline.
func (c *cli) verifyFile(path, key string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h, recs, err := audit.ParseExport(f)
	if err != nil {
		return err
	}
	pub, _ := audit.ParsePublicKey(h.PublicKey)
	if key != "" {
		var ok bool
		if pub, ok = audit.ParsePublicKey(key); !ok {
			return usagef("--public-key is not an Ed25519 public key in base64url")
		}
	}
	rep, err := audit.Verify(recs, pub)
	var p *audit.Problem
	if errors.As(err, &p) {
		// Line numbers count the header line.
		return fmt.Errorf("%s does not verify: line %d: record %d %s: %s", path, p.Position+1, p.Seq, p.What, p.Detail)
	}
	if err != nil {
		return err
	}
	trust := "the key in its header"
	if key != "" {
		trust = "the given key"
	}
	fmt.Fprintf(c.stdout, "ok: %d records, %d checkpoints, last record %d (%s), verified with %s\n",
		rep.Records, rep.Checkpoints, rep.LastSeq, rep.LastHash, trust)
	return nil
}

func (c *cli) auditExportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "export",
		Short:   "Write the whole audit chain to a file (NDJSON, the public key first)",
		Example: "  aegis audit export --out audit.ndjson",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			err = ac.AuditExport(cmd.Context(), f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("export audit log: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the file to write")
	return cmd
}
