package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/internal/scaffold"
	"github.com/aegis-platform/aegis/internal/sdkproxy"
	csdk "github.com/aegis-platform/aegis/sdk/c"
	rustsdk "github.com/aegis-platform/aegis/sdk/rust"
)

func (c *cli) newCommand() *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "new go|c|rust|js DIR",
		Short: "Write a new function in DIR: handler, aegis.yaml, a unit test and a README",
		Long: `Write a working function into DIR (which must not exist or be empty): a
handler (Go: POST /hello and GET /hello/{name} on an http.ServeMux; Rust: GET
/hello/{name}; JavaScript: GET /hello/{name} counting visits in a table; C:
POST /hello), its aegis.yaml, a unit test and a README.
` + "`aegis up DIR`" + ` runs a Go, Rust or JavaScript function as it is (a Rust one
with the SDK crate written into DIR/aegis-sdk; a JavaScript one, a WebAssembly
component, after npm install brings componentize-js into DIR/node_modules the
first time); a C function is built with clang first (its README says how).
The SDK comes with this binary: a Go function's go.mod requires the version
it carries and go.sum is written from it, offline.`,
		Example: `  aegis new go hello && aegis up hello
  aegis new rust hello-rs && aegis up hello-rs
  aegis new js hello-js && aegis up hello-js
  aegis new c hello-c --app greeter`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lang, dir := args[0], args[1]
			if !slices.Contains(scaffold.Languages, lang) {
				return usageError{fmt.Sprintf("unknown language %q: use %s", lang, strings.Join(scaffold.Languages, " or "))}
			}
			if app == "" {
				app = scaffold.AppName(dir)
			}
			files, err := scaffold.New(lang, dir, scaffold.Params{
				App: app, SDKModule: sdkproxy.ModulePath, SDKVersion: sdkproxy.Version(), CHeader: csdk.Header, RustSDK: rustsdk.Files,
				ComponentizeJS: build.ComponentizeJSVersion,
			})
			if err != nil {
				if errors.Is(err, scaffold.ErrNotEmpty) {
					return fmt.Errorf("%w: aegis new writes into a new or empty directory only, so nothing is overwritten", err)
				}
				return fmt.Errorf("new %s function: %w", lang, err)
			}
			if lang == "go" {
				if err := goModTidy(cmd, dir); err != nil {
					return fmt.Errorf("wrote %s in %s, but %w", strings.Join(files, ", "), dir, err)
				}
				files = append(files, "go.sum")
			}
			fmt.Fprintf(c.stdout, "wrote %s: %s\n", dir, strings.Join(files, ", "))
			switch lang {
			case "go", "rust":
				fmt.Fprintf(c.stdout, "next: aegis up %s\n", dir)
			case "js":
				fmt.Fprintf(c.stdout, "next: aegis up %s (its first build runs npm install there)\n", dir)
			default:
				fmt.Fprintf(c.stdout, "next: build hello.wasm as %s says, then aegis up %s\n", filepath.Join(dir, "README.md"), dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "app name (default: from DIR's name)")
	return cmd
}

// goModTidy writes go.sum for a new Go function, with the SDK from the
// proxy this binary writes: no network is needed.
func goModTidy(cmd *cobra.Command, dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("a Go toolchain is needed to build Go functions (go.sum was not written): %w", err)
	}
	env, err := sdkproxy.GoEnv(cmd.Context(), goBin, os.Environ())
	if err != nil {
		return err
	}
	tidy := exec.CommandContext(cmd.Context(), goBin, "mod", "tidy")
	tidy.Dir = dir
	tidy.Env = env
	if out, err := tidy.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod tidy: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *cli) envCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "Print the Go settings that let go get, go mod tidy and editors find the SDK",
		Long: `Print, as shell exports, the GOPROXY and GONOSUMDB that put the Go SDK this
binary carries within reach of the Go toolchain (a module proxy written under
the user cache directory; no network needed). aegis build, deploy and up use
them on their own; export them for go get, go mod tidy, go test and editors.`,
		Example: `  eval "$(aegis env)"
  go get ` + sdkproxy.ModulePath + `@` + sdkproxy.Version(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			goBin, err := exec.LookPath("go")
			if err != nil {
				return fmt.Errorf("a Go toolchain is needed: %w", err)
			}
			set, err := sdkproxy.Prepared(cmd.Context(), goBin, os.Environ())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "export GOPROXY=%s\nexport GONOSUMDB=%s\n", shellQuote(set.GOPROXY), shellQuote(set.GONOSUMDB))
			return nil
		},
	}
}
