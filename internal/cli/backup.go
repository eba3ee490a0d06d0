package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aegis-platform/aegis/internal/backup"
	"github.com/aegis-platform/aegis/internal/vault"
)

// backupCommand is `aegis backup`: the server writes a sealed backup of
// the whole platform, which the CLI copies to a file (docs/backup.md).
func (c *cli) backupCommand() *cobra.Command {
	var out, keyFile string
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--backup-key KEYFILE]",
		Short: "Write an encrypted backup of the whole platform, while the server serves",
		Long: "The server copies every stream it keeps (apps, modules, keys and token hashes, the vault,\n" +
			"tables, objects, events, dead letters, usage, audit, logs) and its key files, sealed under a\n" +
			"fresh key that the vault's master key wraps; FILE is written (0600) once the server said the\n" +
			"backup is complete. With --backup-key the backup also opens with that key (32 bytes, base64,\n" +
			"created 0600 when KEYFILE does not exist): keep it apart from the backups. A dangerous\n" +
			"change: with an authenticator enrolled it needs --otp. Restore with `aegis restore`.",
		Example: "  aegis backup --out aegis.backup --otp 123456\n" +
			"  aegis backup --out aegis.backup --backup-key backup.key",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			var key []byte
			if keyFile != "" {
				k, created, err := backup.LoadOrCreateBackupKey(keyFile)
				if err != nil {
					return err
				}
				defer clear(k)
				key = k
				if created {
					fmt.Fprintf(c.stderr, "aegis: backup key created in %s: keep a copy apart from the backups; with it or the master key a backup opens\n", keyFile)
				}
			}
			partial := out + ".partial"
			f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			keep := false
			defer func() {
				if !keep {
					_ = f.Close()
					_ = os.Remove(partial)
				}
			}()
			bar := newByteBar(c.stderr, "backup")
			res, err := ac.Backup(cmd.Context(), key, io.MultiWriter(f, bar), bar.start)
			bar.done(err == nil)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := os.Rename(partial, out); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			keep = true
			syncDir(filepath.Dir(out))
			fmt.Fprintf(c.stdout, "backup written to %s: %d streams, %d messages, %s\n", out, res.Streams, res.Messages, byteSize(res.Bytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the backup file to write (FILE.partial until it is complete)")
	cmd.Flags().StringVar(&keyFile, "backup-key", "",
		"also seal the backup for this key file (32 bytes, base64, mode 0600; created when it does not exist)")
	return cmd
}

// restoreCommand is `aegis restore`: offline, a backup becomes a new data
// directory.
func (c *cli) restoreCommand() *cobra.Command {
	var keyFile, masterFile string
	transit := vault.TransitConfig{}
	cmd := &cobra.Command{
		Use:   "restore FILE --data DIR",
		Short: "Build a new data directory from a backup (offline: no server runs on it)",
		Long: "DIR must not exist or be empty. Everything is built in a temporary directory next to it,\n" +
			"which becomes DIR only once the whole backup has authenticated to its last byte: a modified,\n" +
			"truncated or wrong-key backup is refused and DIR is left as it was. The backup opens with the\n" +
			"master key (--master-key-file, $AEGIS_MASTER_KEY, the default key file, or a Transit key) or\n" +
			"with --backup-key. Start `aegis server --data DIR` with the same master key afterwards: the\n" +
			"vault and the apps' data still need it.",
		Example: "  aegis restore aegis.backup --data /srv/aegis\n" +
			"  aegis restore aegis.backup --data /srv/aegis --backup-key backup.key",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := c.restoreKeys(keyFile, masterFile, transit)
			if err != nil {
				return err
			}
			defer clear(keys.BackupKey)
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			var size int64
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
			bar := newByteBar(c.stderr, "restore")
			bar.start(size)
			h, sum, err := backup.Restore(cmd.Context(), io.TeeReader(f, bar), backup.RestoreOptions{Keys: keys, Dir: c.dataDir})
			bar.done(err == nil)
			if err != nil {
				switch {
				case errors.Is(err, backup.ErrDamaged):
					return fmt.Errorf("%w; nothing was restored and %s is unchanged", err, c.dataDir)
				case errors.Is(err, backup.ErrWrongKey):
					return fmt.Errorf("%w; nothing was restored and %s is unchanged", err, c.dataDir)
				}
				return err
			}
			fmt.Fprintf(c.stdout, "restored %d streams (%d messages) and %d files into %s from the backup of %s (server %s)\n",
				sum.Streams, sum.Messages, sum.Files, c.dataDir, h.Created.Format(time.RFC3339), orUnknown(h.ServerVersion))
			fmt.Fprintf(c.stdout, "start it with the same master key: aegis server --data %s\n", c.dataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "backup-key", "", "open the backup with this backup key file instead of the master key")
	cmd.Flags().StringVar(&masterFile, "master-key-file", "",
		"the vault's master key; default $AEGIS_MASTER_KEY, else the key file under the user's config directory (never created here)")
	cmd.Flags().StringVar(&transit.Key, "vault-transit-key", "",
		"open the backup with this HashiCorp Vault Transit key (address and token from VAULT_ADDR and VAULT_TOKEN)")
	cmd.Flags().StringVar(&transit.Mount, "vault-transit-mount", "transit", "the Transit engine's mount path")
	cmd.Flags().BoolVar(&transit.Derived, "vault-transit-derived", false, "the Transit key was created with derived=true")
	return cmd
}

// restoreKeys gathers the keys a restore may open a backup with: the
// backup key when given; the master key when named (file, environment,
// Transit) or when no backup key is given (then also the default key
// file, which a restore never creates).
func (c *cli) restoreKeys(keyFile, masterFile string, transit vault.TransitConfig) (backup.Keys, error) {
	var keys backup.Keys
	if keyFile != "" {
		k, err := backup.LoadBackupKey(keyFile)
		if err != nil {
			return keys, err
		}
		keys.BackupKey = k
	}
	lookup := func(k string) (string, bool) {
		v := c.env(k)
		return v, v != ""
	}
	_, envKey := lookup(vault.MasterKeyEnv)
	switch {
	case transit.Key != "":
		t, err := vault.NewTransit(transit)
		if err != nil {
			return keys, fmt.Errorf("restore: %w", err)
		}
		keys.Master = t
	case masterFile != "" || envKey:
		k, _, err := vault.LoadMasterKey(vault.MasterKeyOptions{File: masterFile, LookupEnv: lookup})
		if err != nil {
			return keys, fmt.Errorf("restore: %w", err)
		}
		keys.Master = k
	case keys.BackupKey == nil:
		path, err := vault.DefaultMasterKeyPath()
		if err != nil {
			return keys, fmt.Errorf("restore: %w", err)
		}
		if _, err := os.Stat(path); err != nil {
			return keys, fmt.Errorf("restore: no key to open the backup: give --master-key-file, %s, a Transit key, or --backup-key (no master key in %s)",
				vault.MasterKeyEnv, path)
		}
		k, _, err := vault.LoadMasterKey(vault.MasterKeyOptions{File: path})
		if err != nil {
			return keys, fmt.Errorf("restore: %w", err)
		}
		keys.Master = k
	}
	return keys, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// syncDir makes a rename in dir durable, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// byteSize is n in the largest binary unit that keeps it above 1.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// byteBar is a progress bar of bytes on a terminal: a bar toward the
// expected size (capped below 100 % until the end, since the size is an
// estimate), the bytes so far and the rate, redrawn at most ten times a
// second. Not on a terminal it shows nothing; the command's result line is
// the record.
type byteBar struct {
	w     io.Writer
	tty   bool
	label string

	mu       sync.Mutex
	total    int64
	n        int64
	began    time.Time
	drawn    time.Time
	active   bool
	finished bool // done(true): the bar may show 100 %
}

func newByteBar(w io.Writer, label string) *byteBar {
	b := &byteBar{w: w, label: label}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.tty = true
	}
	return b
}

// start begins the bar toward an expected size (0 when unknown).
func (b *byteBar) start(total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total, b.began, b.active = total, time.Now(), true
	b.draw(true)
}

func (b *byteBar) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(len(p))
	b.draw(false)
	return len(p), nil
}

// done draws the final state and ends the line.
func (b *byteBar) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.tty || !b.active {
		return
	}
	if ok {
		b.total, b.finished = b.n, true
	}
	b.draw(true)
	fmt.Fprintln(b.w)
	b.active = false
}

const barWidth = 30

func (b *byteBar) draw(force bool) {
	if !b.tty || !b.active {
		return
	}
	now := time.Now()
	if !force && now.Sub(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = now
	frac := 0.0
	if b.total > 0 {
		frac = min(float64(b.n)/float64(b.total), 1)
		if !b.finished {
			frac = min(frac, 0.99)
		}
	}
	filled := int(frac * barWidth)
	rate := ""
	if s := now.Sub(b.began).Seconds(); s > 0.5 {
		rate = "  " + byteSize(int64(float64(b.n)/s)) + "/s"
	}
	fmt.Fprintf(b.w, "\r%s [%s%s] %3d%%  %s%s\x1b[K", b.label, strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled),
		int(frac*100), byteSize(b.n), rate)
}
