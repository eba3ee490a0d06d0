// Package build turns the functions of a manifest into WebAssembly modules
// ready to deploy: a Go package is compiled with the local Go toolchain for
// wasip1, a Rust crate (a directory with a Cargo.toml) with cargo for
// wasm32-wasip1 (cargo.go), a JavaScript function (a directory with a
// package.json) into a WebAssembly component with componentize-js and node
// (js.go), a .wasm file is taken as it is. It writes only under the
// manifest's .aegis/build directory, apart from what npm install adds to a
// JavaScript function's directory that lacks componentize-js (node_modules,
// package-lock.json), and never contacts the server.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis/internal/sdkproxy"
	"github.com/aegis-platform/aegis/manifest"
)

// Artifact is one function's module.
type Artifact struct {
	Function string
	Path     string // the .wasm file, absolute
	SHA256   string // hex digest of the file's bytes
	Size     int64
}

// parallelism bounds concurrent compilations. A Go build already uses every
// core for a while, so two at once keeps the linker of one busy while the
// other compiles without thrashing a small machine.
const parallelism = 2

// maxCompilerOutput bounds the compiler output kept for an error message.
const maxCompilerOutput = 32 << 10

// OutputDir is where compiled modules go, relative to the manifest's directory.
const OutputDir = ".aegis/build"

// Build builds every function of the manifest at manifestPath, in name
// order, and reports to progress (which may be nil) a line when a
// compilation starts ("building NAME …") and one when each function is
// done ("building NAME … ok (SIZE, TIME)" or "… failed").
// When functions fail, the error names each of them with the compiler's
// output; the artifacts of those that succeeded are not returned.
func Build(ctx context.Context, manifestPath string, progress io.Writer) ([]Artifact, error) {
	m, pos, err := manifest.LoadWithPositions(manifestPath)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(manifestPath))
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(slices.Values(m.FunctionNames()))
	if progress == nil {
		progress = io.Discard
	}
	p := &printer{w: progress}

	arts := make([]Artifact, len(names))
	errs := make([]error, len(names))
	// The environment of every Go build: worked out once, when the first
	// one starts (it runs `go env`), not at all for .wasm sources.
	env := sync.OnceValues(func() ([]string, error) { return goEnv(ctx) })
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("build %s: %w", name, ctx.Err())
				return
			}
			defer func() { <-sem }()
			arts[i], errs[i] = buildFunction(ctx, dir, name, m.Functions[name].Source, pos, p, env)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return arts, nil
}

// buildFunction produces the module of one function whose source is given
// relative to dir. A source that is not there is reported at the manifest
// line naming it (pos), since that line, not the build, is what to fix.
func buildFunction(ctx context.Context, dir, name, source string, pos *manifest.Positions, p *printer, env func() ([]string, error)) (Artifact, error) {
	src := source
	if !filepath.IsAbs(src) {
		src = filepath.Join(dir, src)
	}
	field := "functions." + name + ".source"
	start := time.Now()
	var out string
	if strings.HasSuffix(src, ".wasm") {
		out = src
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			p.line("building %s … failed", name)
			return Artifact{}, fmt.Errorf("build %s: %w", name, pos.Errorf(field, "module %s does not exist (looked for %s)", source, src))
		}
	} else {
		fi, err := os.Stat(src)
		if errors.Is(err, fs.ErrNotExist) {
			p.line("building %s … failed", name)
			return Artifact{}, fmt.Errorf("build %s: %w", name, pos.Errorf(field, "source directory %s does not exist (looked for %s)", source, src))
		}
		if err != nil {
			p.line("building %s … failed", name)
			return Artifact{}, fmt.Errorf("build %s: %w", name, pos.Errorf(field, "source %s: %s", source, err))
		}
		if !fi.IsDir() {
			p.line("building %s … failed", name)
			return Artifact{}, fmt.Errorf("build %s: %w", name, pos.Errorf(field, "source %s is neither a Go package, Rust crate or JavaScript function directory nor a .wasm file", source))
		}
		out = filepath.Join(dir, OutputDir, name+".wasm")
		p.line("building %s …", name)
		build := func() error { return compile(ctx, src, out, env) }
		switch {
		case isRust(src):
			build = func() error { return cargoBuild(ctx, src, out) }
		case isJS(src):
			installing := func() { p.line("building %s … npm install in %s", name, src) }
			build = func() error { return jsBuild(ctx, src, out, installing) }
		}
		if err := build(); err != nil {
			p.line("building %s … failed", name)
			return Artifact{}, fmt.Errorf("build %s: %w", name, err)
		}
	}
	a, err := describe(name, out)
	if err != nil {
		p.line("building %s … failed", name)
		return Artifact{}, fmt.Errorf("build %s: %w", name, err)
	}
	p.line("building %s … ok (%s, %.1fs)", name, HumanSize(a.Size), time.Since(start).Seconds())
	return a, nil
}

// goEnv is the environment of a Go build: the user's, with the SDK proxy
// this binary writes (internal/sdkproxy) first in GOPROXY. When the proxy
// cannot be written, the user's environment alone, and the reason. Build
// asks once for all its functions: it runs `go env`.
func goEnv(ctx context.Context) ([]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return os.Environ(), err
	}
	env, err := sdkproxy.GoEnv(ctx, goBin, os.Environ())
	if err != nil {
		return os.Environ(), err
	}
	return env, nil
}

// compile runs the Go toolchain on the package in srcDir. c-shared makes a
// reactor module: the runtime initializes once and the host calls the
// functions the package exports with //go:wasmexport, which is how the
// sandbox keeps warm instances. The user's environment is kept (GOPATH,
// GOPROXY, GOFLAGS, caches) with the SDK proxy added, but the target is
// forced, and cgo is off because wasip1 has no C toolchain.
func compile(ctx context.Context, srcDir, out string, goEnv func() ([]string, error)) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("a Go toolchain is needed to build Go sources: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	env, proxyErr := goEnv()
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = srcDir
	// The environment is shared by the functions built at once: a copy,
	// never an append into its spare capacity, which they would race for.
	cmd.Env = slices.Concat(env, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"})
	if msg, err := runCompiler(cmd, false); err != nil {
		if proxyErr != nil {
			// Without the proxy the SDK resolves only through a replace
			// directive; say why it was missing in case that is the cause.
			msg += fmt.Sprintf("\n(the Go SDK this binary carries could not be offered to the Go toolchain: %v)", proxyErr)
		}
		if msg == "" {
			return fmt.Errorf("go build: %w", err)
		}
		return fmt.Errorf("go build: %w\n%s", err, strings.TrimSpace(msg))
	}
	return nil
}

// runCompiler runs cmd and, when it fails, returns its output with the
// error, trimmed to maxCompilerOutput: its head, or with tail its end
// (cargo prints its summary of the errors last).
func runCompiler(cmd *exec.Cmd, tail bool) (string, error) {
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	err := cmd.Run()
	if err == nil {
		return "", nil
	}
	msg := strings.TrimSpace(output.String())
	switch {
	case len(msg) <= maxCompilerOutput:
	case tail:
		msg = "…\n" + msg[len(msg)-maxCompilerOutput:]
	default:
		msg = msg[:maxCompilerOutput] + "\n…"
	}
	return msg, err
}

// describe hashes the module at path.
func describe(name, path string) (Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, fmt.Errorf("read %s: %w", path, err)
	}
	return Artifact{Function: name, Path: path, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// printer writes whole progress lines so parallel builds never interleave
// inside a line.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// HumanSize formats n in decimal units, like most tools show file sizes;
// the CLI uses it too so every size it prints looks the same.
func HumanSize(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
