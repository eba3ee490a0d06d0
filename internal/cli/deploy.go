package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/manifest"
)

const defaultManifest = "aegis.yaml"

func (c *cli) buildCommand() *cobra.Command {
	var (
		file string
		out  format
	)
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build every function of a manifest into a WebAssembly module",
		Long: `Build every function of a manifest into a WebAssembly module.
A function whose source is a Go package directory is compiled with the local Go
toolchain (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) into
.aegis/build/FUNCTION.wasm next to the manifest; a .wasm source is used as is.
Progress goes to stderr, the list of modules to stdout.`,
		Example: `  aegis build
  aegis build examples/travel-diary
  aegis build -f examples/travel-diary/aegis.yaml -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := manifestArg(cmd, file, args)
			if err != nil {
				return err
			}
			progress := newProgress(c.stderr)
			arts, err := build.Build(cmd.Context(), file, progress)
			progress.Close()
			if err != nil {
				return err
			}
			return writeArtifacts(c.stdout, out, arts)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", defaultManifest, "manifest to build")
	addOutputFlag(cmd, &out)
	return cmd
}

// manifestArg is the manifest a build or deploy works on: DIR/aegis.yaml
// for a directory argument (as for up), the file itself for a .yaml one,
// -f otherwise.
func manifestArg(cmd *cobra.Command, file string, args []string) (string, error) {
	if len(args) == 0 {
		return file, nil
	}
	if cmd.Flags().Changed("file") {
		return "", usageError{"give the app's directory or -f FILE, not both"}
	}
	if strings.HasSuffix(args[0], ".yaml") || strings.HasSuffix(args[0], ".yml") {
		return args[0], nil
	}
	return filepath.Join(args[0], defaultManifest), nil
}

func (c *cli) deployCommand() *cobra.Command {
	var (
		file string
		out  format
	)
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Build a manifest's functions, upload their modules and activate a new version",
		Long: `Build a manifest's functions, upload the modules the server does not have yet
and activate a new version of the app. When the server refuses the manifest or a
module, the version that was active keeps serving.

The admin API is at AEGIS_URL (default ` + defaultAdminURL + `); the token is
AEGIS_TOKEN or the admin.token file in the --data directory.`,
		Example: `  aegis deploy
  aegis deploy examples/travel-diary
  aegis deploy -f examples/travel-diary/aegis.yaml
  AEGIS_URL=https://aegis.internal:8081 AEGIS_TOKEN=... aegis deploy`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := manifestArg(cmd, file, args)
			if err != nil {
				return err
			}
			ac, err := c.adminClient()
			if err != nil {
				return err
			}
			progress := newProgress(c.stderr)
			arts, err := build.Build(cmd.Context(), file, progress)
			if err != nil {
				progress.Close()
				return err
			}
			res, err := deploy(cmd.Context(), ac, file, arts, progress)
			progress.Close()
			if err != nil {
				return err
			}
			if out == formatJSON {
				return writeJSON(c.stdout, res)
			}
			if res.Unchanged {
				// Not an error: the server already runs exactly this, and
				// a script deploying on every commit should not fail.
				_, err = fmt.Fprintf(c.stdout, "unchanged: %s %s is already active\n", res.App, res.Version)
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "deployed %s %s\n", res.App, res.Version)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", defaultManifest, "manifest to deploy")
	addOutputFlag(cmd, &out)
	return cmd
}

// deploy uploads the modules the server lacks, then asks it to activate the
// manifest at manifestPath with those modules and the schema files it
// names. Modules are addressed by
// their SHA-256, so an unchanged function costs one HEAD request.
func deploy(ctx context.Context, ac *client.Client, manifestPath string, arts []build.Artifact, progress io.Writer) (*client.DeployResult, error) {
	text, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	m, pos, err := manifest.LoadWithPositions(manifestPath)
	if err != nil {
		return nil, err
	}
	// Schemas are read before any upload: a missing file should not cost
	// a round of module uploads.
	schemas, err := readSchemas(manifestPath, m, pos)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", m.App, err)
	}
	modules := make(map[string]string, len(arts))
	for _, a := range arts {
		if err := uploadModule(ctx, ac, a, progress); err != nil {
			return nil, fmt.Errorf("deploy %s: upload %s: %w", m.App, a.Function, err)
		}
		modules[a.Function] = a.SHA256
	}
	// The server compiles every module it has not compiled before, which
	// takes seconds for a Go module: say so while it runs.
	fmt.Fprintf(progress, "activating %s …\n", m.App)
	res, err := ac.Deploy(ctx, m.App, client.DeployRequest{
		Manifest: string(text),
		File:     filepath.ToSlash(filepath.Clean(manifestPath)),
		Modules:  modules,
		Schemas:  schemas,
	})
	if err != nil {
		fmt.Fprintf(progress, "activating %s … failed\n", m.App)
		return nil, fmt.Errorf("deploy %s: %w", m.App, err)
	}
	fmt.Fprintf(progress, "activating %s … %s active\n", m.App, res.Version)
	return res, nil
}

func uploadModule(ctx context.Context, ac *client.Client, a build.Artifact, progress io.Writer) error {
	has, err := ac.HasModule(ctx, a.SHA256)
	if err != nil {
		return err
	}
	if has {
		fmt.Fprintf(progress, "uploading %s … unchanged\n", a.Function)
		return nil
	}
	wasm, err := os.ReadFile(a.Path)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "uploading %s …\n", a.Function)
	if err := ac.UploadModule(ctx, a.SHA256, wasm); err != nil {
		fmt.Fprintf(progress, "uploading %s … failed\n", a.Function)
		return err
	}
	fmt.Fprintf(progress, "uploading %s … ok (%s)\n", a.Function, build.HumanSize(a.Size))
	return nil
}
