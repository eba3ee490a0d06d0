package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// isRust reports whether srcDir is a Rust crate (it has a Cargo.toml).
func isRust(srcDir string) bool {
	_, err := os.Stat(filepath.Join(srcDir, "Cargo.toml"))
	return err == nil
}

// The WebAssembly targets a Rust function is built for, newest name first:
// rustc 1.78 renamed wasm32-wasi to wasm32-wasip1.
var rustWasmTargets = []string{"wasm32-wasip1", "wasm32-wasi"}

// ErrNoRustWasm is returned when no Rust compiler with a WebAssembly
// standard library is found.
var ErrNoRustWasm = errors.New("no Rust compiler with the wasm32-wasip1 (or wasm32-wasi) standard library: " +
	"rustup target add wasm32-wasip1, or apt install rustc cargo libstd-rust-dev-wasm32")

// rustForWasm finds a rustc that can build for a WASI target and the
// target's name: $RUSTC, the rustc on PATH, then Debian's /usr/bin/rustc.
// Several toolchains often sit side by side (rustup's on PATH without the
// wasm standard library, the distribution's with it), and cargo alone
// would take the first on PATH.
func rustForWasm(ctx context.Context) (rustc, target string, err error) {
	var candidates []string
	if r := os.Getenv("RUSTC"); r != "" {
		candidates = append(candidates, r)
	}
	if r, err := exec.LookPath("rustc"); err == nil {
		candidates = append(candidates, r)
	}
	candidates = append(candidates, "/usr/bin/rustc")
	for _, r := range candidates {
		out, err := exec.CommandContext(ctx, r, "--print", "sysroot").Output()
		if err != nil {
			continue
		}
		sysroot := strings.TrimSpace(string(out))
		for _, t := range rustWasmTargets {
			if fi, err := os.Stat(filepath.Join(sysroot, "lib", "rustlib", t, "lib")); err == nil && fi.IsDir() {
				return r, t, nil
			}
		}
	}
	return "", "", ErrNoRustWasm
}

// cargoManifest is what Build reads of a Cargo.toml: the name of the
// library the module is built from.
type cargoManifest struct {
	Package struct {
		Name string `toml:"name"`
	} `toml:"package"`
	Lib struct {
		Name      string   `toml:"name"`
		CrateType []string `toml:"crate-type"`
	} `toml:"lib"`
}

// cargoLibName is the file name (without .wasm) cargo gives the crate's
// cdylib, refusing a crate that does not build one.
func cargoLibName(srcDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(srcDir, "Cargo.toml"))
	if err != nil {
		return "", err
	}
	var m cargoManifest
	if err := toml.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("read the crate's Cargo.toml: %w", err)
	}
	cdylib := false
	for _, t := range m.Lib.CrateType {
		cdylib = cdylib || t == "cdylib"
	}
	if !cdylib {
		return "", errors.New(`the crate's Cargo.toml: a function is a library with crate-type = ["cdylib"] under [lib]`)
	}
	name := m.Lib.Name
	if name == "" {
		name = m.Package.Name
	}
	if name == "" {
		return "", errors.New("the crate's Cargo.toml has no [package] name")
	}
	return strings.ReplaceAll(name, "-", "_"), nil
}

// cargoBuild builds the Rust crate in srcDir as a reactor module (a cdylib
// exporting aegis_handle, sdk/rust's handler! macro) and copies it to out.
// Cargo's own build directory is kept beside out, so a rebuild is
// incremental and the source tree is left alone.
func cargoBuild(ctx context.Context, srcDir, out string) error {
	lib, err := cargoLibName(srcDir)
	if err != nil {
		return err
	}
	rustc, target, err := rustForWasm(ctx)
	if err != nil {
		return err
	}
	// The cargo of the same toolchain: a newer cargo passes flags an older
	// rustc does not know.
	cargo := filepath.Join(filepath.Dir(rustc), "cargo")
	if _, err := os.Stat(cargo); err != nil {
		if cargo, err = exec.LookPath("cargo"); err != nil {
			return fmt.Errorf("a Rust toolchain (cargo) is needed to build Rust sources: %w", err)
		}
	}
	targetDir := filepath.Join(filepath.Dir(out), "cargo")
	cmd := exec.CommandContext(ctx, cargo, "build", "--release", "--target", target, "--target-dir", targetDir)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "RUSTC="+rustc)
	if msg, err := runCompiler(cmd, true); err != nil {
		return fmt.Errorf("cargo build: %w\n%s", err, msg)
	}
	built, err := os.ReadFile(filepath.Join(targetDir, target, "release", lib+".wasm"))
	if err != nil {
		return fmt.Errorf("cargo build: the module: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, built, 0o644)
}
