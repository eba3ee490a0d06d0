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
	"github.com/aegis-platform/aegis/internal/scan"
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
		file            string
		out             format
		failOn          = severityFlag{scan.Critical}
		accept, reasons []string
		vulndb          string
	)
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Build a manifest's functions, upload their modules and activate a new version",
		Long: `Build a manifest's functions, upload the modules the server does not have yet
and activate a new version of the app. When the server refuses the manifest or a
module, the version that was active keeps serving.

Before anything is sent, the deploy gate checks the app as aegis scan does (its
manifest's risk rules, secrets in its sources and modules, and, with --vulndb or
$AEGIS_VULNDB, vulnerable dependencies) and refuses when a finding is at or above
--fail-on (default critical). --accept ID --reason TEXT waives one finding; the
server records who accepted what, and why, in its audit log, and checks what the
deploy carries once more at its own level.

The admin API is at AEGIS_URL (default ` + defaultAdminURL + `); the token is
AEGIS_TOKEN or the admin.token file in the --data directory.`,
		Example: `  aegis deploy
  aegis deploy examples/travel-diary
  aegis deploy -f examples/travel-diary/aegis.yaml
  aegis deploy --accept public-route-no-rate:status:0 --reason "a health check"
  AEGIS_URL=https://aegis.internal:8081 AEGIS_TOKEN=... aegis deploy`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := manifestArg(cmd, file, args)
			if err != nil {
				return err
			}
			ws, err := waivers(accept, reasons)
			if err != nil {
				return err
			}
			if vulndb == "" {
				vulndb = c.env("AEGIS_VULNDB")
			}
			if err := checkVulnDB(vulndb); err != nil {
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
			progress.Close()
			if err := gateBeforeDeploy(cmd, c.stderr, file, arts, ws, failOn.Severity, vulndb); err != nil {
				return err
			}
			progress = newProgress(c.stderr)
			res, err := deploy(cmd.Context(), ac, file, arts, ws, progress)
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
	cmd.Flags().Var(&failOn, "fail-on", "refuse the deploy when a finding is at or above this level: critical, high, medium, low, info or none")
	cmd.Flags().StringArrayVar(&accept, "accept", nil, "accept the finding of this id (repeatable; needs --reason)")
	cmd.Flags().StringArrayVar(&reasons, "reason", nil, "why the finding is accepted: one for all, or one per --accept")
	cmd.Flags().StringVar(&vulndb, "vulndb", "", "OSV vulnerability database: a directory or an http(s) URL (default $AEGIS_VULNDB)")
	addOutputFlag(cmd, &out)
	return cmd
}

// deploy uploads the modules the server lacks, then asks it to activate the
// manifest at manifestPath with those modules and the schema files it
// names. Modules are addressed by
// their SHA-256, so an unchanged function costs one HEAD request.
func deploy(ctx context.Context, ac *client.Client, manifestPath string, arts []build.Artifact, ws []scan.Waiver, progress io.Writer) (*client.DeployResult, error) {
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
		Accept:   acceptOf(ws),
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

// acceptOf is the waivers as the deploy request carries them.
func acceptOf(ws []scan.Waiver) []client.Waiver {
	out := make([]client.Waiver, len(ws))
	for i, w := range ws {
		out[i] = client.Waiver{ID: w.ID, Reason: w.Reason}
	}
	return out
}
