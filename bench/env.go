package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/vault"
)

// Env is what every scenario shares: the run's settings, a scratch
// directory and the wasm modules built once per run.
type Env struct {
	Quick   bool
	Rounds  int
	Verbose bool
	dir     string

	mu      sync.Mutex
	modules map[string][]byte
}

func newEnv(quick bool, rounds int, verbose bool) (*Env, error) {
	dir, err := os.MkdirTemp("", "aegis-bench-")
	if err != nil {
		return nil, err
	}
	if quick {
		rounds = 1
	}
	if rounds < 1 {
		rounds = 1
	}
	return &Env{Quick: quick, Rounds: rounds, Verbose: verbose, dir: dir, modules: map[string][]byte{}}, nil
}

// Close removes the scratch directory.
func (e *Env) Close() { _ = os.RemoveAll(e.dir) }

// TempDir returns a new directory under the run's scratch directory.
func (e *Env) TempDir() string {
	d, err := os.MkdirTemp(e.dir, "d-")
	if err != nil {
		panic(err) // the scratch directory was made by newEnv; failing here means the disk is gone
	}
	return d
}

// GoModule builds a Go function directory (with its own go.mod) to a
// reactor module, once per run.
func (e *Env) GoModule(ctx context.Context, dir string) ([]byte, error) {
	return e.build(ctx, "go:"+dir, func(out string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		return cmd
	})
}

// CModule builds a C file with clang for wasm32-wasi: a reactor exporting
// aegis_handle, or a command module.
func (e *Env) CModule(ctx context.Context, file string, reactor bool) ([]byte, error) {
	return e.build(ctx, fmt.Sprintf("c:%s:%v", file, reactor), func(out string) *exec.Cmd {
		args := []string{"--target=wasm32-wasi", "-O2", "-o", out}
		if reactor {
			args = append(args, "-mexec-model=reactor", "-Wl,--export=aegis_handle")
		}
		return exec.CommandContext(ctx, "clang", append(args, file)...)
	})
}

func (e *Env) build(ctx context.Context, key string, cmd func(out string) *exec.Cmd) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.modules[key]; ok {
		return b, nil
	}
	out := filepath.Join(e.dir, fmt.Sprintf("m%d.wasm", len(e.modules)))
	c := cmd(out)
	if msg, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", key, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	e.modules[key] = b
	return b, nil
}

// Instance is a running Aegis server on loopback ports.
type Instance struct {
	Srv     *server.Server
	Admin   *client.Client
	Gateway string
	DataDir string
}

// MasterKey is where the benchmark's servers keep their vault's master
// key: under the run's own directory, never the user's config directory.
func (e *Env) MasterKey() vault.MasterKeyOptions {
	return vault.MasterKeyOptions{ConfigDir: filepath.Join(e.dir, "config")}
}

// StartServer starts a server with a fresh data directory (or dataDir when
// not empty, to measure a restart).
func (e *Env) StartServer(ctx context.Context, dataDir string) (*Instance, error) {
	return e.StartServerWith(ctx, dataDir, nil)
}

// StartServerWith is StartServer with adjust applied to the server's
// configuration before it starts (nil: none).
func (e *Env) StartServerWith(ctx context.Context, dataDir string, adjust func(*server.Config)) (*Instance, error) {
	if dataDir == "" {
		dataDir = e.TempDir()
	}
	var w io.Writer = io.Discard
	if e.Verbose {
		w = os.Stderr
	}
	cfg := server.Config{
		DataDir: dataDir, HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Logger:       slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DrainTimeout: 5 * time.Second,
		MasterKey:    e.MasterKey(),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return &Instance{Srv: srv, Admin: client.New(srv.AdminURL(), srv.AdminToken()), Gateway: srv.GatewayURL(), DataDir: dataDir}, nil
}

// Close stops the server.
func (in *Instance) Close() { _ = in.Srv.Close(context.Background()) }

// Deploy uploads wasm and deploys manifest (YAML text) with every named
// function running that module.
func (in *Instance) Deploy(ctx context.Context, app, manifest string, wasm []byte, functions ...string) (*client.DeployResult, error) {
	return in.DeployWithSchemas(ctx, app, manifest, nil, wasm, functions...)
}

// DeployWithSchemas is Deploy with the schema files (name → contents) the
// manifest names.
func (in *Instance) DeployWithSchemas(ctx context.Context, app, manifest string, schemas map[string]string, wasm []byte, functions ...string) (*client.DeployResult, error) {
	sum := sha256.Sum256(wasm)
	hexsum := hex.EncodeToString(sum[:])
	if err := in.Admin.UploadModule(ctx, hexsum, wasm); err != nil {
		return nil, err
	}
	mods := map[string]string{}
	for _, f := range functions {
		mods[f] = hexsum
	}
	return in.Admin.Deploy(ctx, app, client.DeployRequest{Manifest: manifest, File: "aegis.yaml", Modules: mods, Schemas: schemas})
}

// Key creates an API key.
func (in *Instance) Key(ctx context.Context, name string) (string, error) {
	k, err := in.Admin.CreateKey(ctx, name)
	if err != nil {
		return "", err
	}
	return k.Key, nil
}

// JSComponent builds a JavaScript function directory (a package.json) into
// a component with aegis build's componentize-js step, once per run. It
// needs componentize-js in dir's node_modules or AEGIS_JS_MODULES (the test
// command's install), linked into a copy of dir so nothing is fetched.
func (e *Env) JSComponent(ctx context.Context, dir string) ([]byte, error) {
	return e.buildWith(ctx, "js:"+dir, func(out string) error {
		work, err := os.MkdirTemp(e.dir, "js-")
		if err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, ent := range entries {
			if ent.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(work, ent.Name()), b, 0o644); err != nil {
				return err
			}
		}
		modules := filepath.Join(dir, "node_modules")
		if m := os.Getenv("AEGIS_JS_MODULES"); m != "" {
			modules = filepath.Join(m, "node_modules")
		}
		if _, err := os.Stat(filepath.Join(modules, "@bytecodealliance", "componentize-js")); err != nil {
			return fmt.Errorf("componentize-js is not installed for %s: npm install there, or set AEGIS_JS_MODULES (scripts/test.sh does)", dir)
		}
		if err := os.Symlink(modules, filepath.Join(work, "node_modules")); err != nil {
			return err
		}
		manifest := filepath.Join(work, "aegis.yaml")
		if err := os.WriteFile(manifest, []byte("app: bench\nfunctions:\n  fn:\n    source: .\n"), 0o644); err != nil {
			return err
		}
		arts, err := build.Build(ctx, manifest, nil)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(arts[0].Path)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}

// buildWith is build for a builder that is not one command.
func (e *Env) buildWith(ctx context.Context, key string, produce func(out string) error) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.modules[key]; ok {
		return b, nil
	}
	out := filepath.Join(e.dir, fmt.Sprintf("m%d.wasm", len(e.modules)))
	if err := produce(out); err != nil {
		return nil, fmt.Errorf("build %s: %w", key, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	e.modules[key] = b
	return b, nil
}
