package cli

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/internal/server"
)

func (c *cli) devCommand() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "dev [DIR]",
		Short: "Like up, then rebuild and redeploy DIR on every save",
		Long: `The inner loop of writing a function: everything aegis up does (build
DIR/aegis.yaml, default the current directory, start a local server, deploy,
print the gateway URL and an API key), then watch DIR and, whenever a file
changes, build and deploy again, printing the new version. A build or deploy
that fails is printed and the previous version keeps serving; the API key
stays the same. Hidden directories (.aegis, .git) and node_modules and target
are not watched. Ctrl-C stops the server.`,
		Example: `  aegis dev
  aegis dev hello --http 127.0.0.1:0 --admin 127.0.0.1:0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return c.runUp(cmd, &cfg, dir, true)
		},
	}
	addServerFlags(cmd.Flags(), &cfg)
	return cmd
}

// devPollEvery is how often aegis dev looks for changes. Polling rather
// than inotify: it works the same on every system and every file system
// (network mounts, containers' bind mounts), and a function's sources are
// a handful of files.
const devPollEvery = 300 * time.Millisecond

// redeployOnSave rebuilds and redeploys the app of manifestPath whenever a
// file under dir changes, until ctx ends. A change is acted on once the
// tree has stayed the same for one poll: an editor saving writes in
// several steps.
func (c *cli) redeployOnSave(ctx context.Context, s *server.Server, dir, manifestPath, dataDir string) {
	ac := localClient(s, c.otpOptions()...)
	fmt.Fprintf(c.stdout, "Watching %s: every save rebuilds and redeploys.\n", dir)
	deployed, err := sourceFingerprint(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "aegis dev: %v\n", err)
	}
	seen := deployed
	t := time.NewTicker(devPollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := sourceFingerprint(dir)
		if err != nil {
			continue // a file removed while walking: look again next time
		}
		settled := now == seen
		seen = now
		if !settled || now == deployed {
			continue
		}
		deployed = now
		res, err := rebuild(ctx, ac, manifestPath, dataDir, c.stderr)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			fmt.Fprintf(c.stderr, "aegis dev: %v\nthe previous version keeps serving; save again to retry\n", err)
		default:
			fmt.Fprintf(c.stdout, "%s %s deployed (%s)\n", res.App, res.Version, time.Now().Format(time.TimeOnly))
		}
	}
}

// rebuild builds the app of manifestPath and deploys it, as up did first.
func rebuild(ctx context.Context, ac *client.Client, manifestPath, dataDir string, stderr io.Writer) (*client.DeployResult, error) {
	progress := newProgress(stderr)
	defer progress.Close()
	arts, err := build.Build(ctx, manifestPath, progress)
	if err != nil {
		return nil, err
	}
	if err := upSecrets(ctx, ac, manifestPath, dataDir, progress); err != nil {
		return nil, err
	}
	return deploy(ctx, ac, manifestPath, arts, nil, progress)
}

// sourceFingerprint sums the names, sizes and modification times of the
// files under dir that make up the app, so any save changes it.
func sourceFingerprint(dir string) ([32]byte, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "target") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], uint64(info.Size()))
		binary.LittleEndian.PutUint64(b[8:], uint64(info.ModTime().UnixNano()))
		h.Write([]byte(path))
		h.Write(b[:])
		return nil
	})
	var sum [32]byte
	if err != nil {
		return sum, fmt.Errorf("watch %s: %w", dir, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
