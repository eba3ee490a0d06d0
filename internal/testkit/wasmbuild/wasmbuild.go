// Package wasmbuild builds test fixtures (Go function directories, C
// files, JavaScript functions) into WebAssembly, once per source version: outputs are cached in
// a directory under os.TempDir(), keyed by a SHA-256 of the sources, the
// toolchain version and the flags, and published with an atomic rename so
// test packages running in parallel never see a half-written file.
//
// Fixtures are built by the tests, never committed as binaries.
package wasmbuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis/internal/build"
	aegisplatform "github.com/aegis-platform/aegis/wit/aegis-platform"
)

// cacheDir holds built fixtures across test runs and packages.
func cacheDir() string { return filepath.Join(os.TempDir(), "aegis-wasmbuild") }

// GoModule builds the Go function in dir (a directory with its own go.mod)
// as a reactor: GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared, -trimpath.
// Local replace targets in go.mod (such as the SDK) are part of the cache
// key, so editing the SDK rebuilds its users.
func GoModule(tb testing.TB, dir string) []byte {
	tb.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("wasmbuild: go not found in PATH: %v", err)
	}
	flags := []string{"build", "-buildmode=c-shared", "-trimpath"}
	h := sha256.New()
	fmt.Fprintf(h, "go\x00%s\x00%s\x00", goVersion(tb, goBin), strings.Join(flags, " "))
	hashTree(tb, h, dir)
	for _, rep := range localReplaces(tb, dir) {
		hashTree(tb, h, rep)
	}
	key := hex.EncodeToString(h.Sum(nil))
	return cached(tb, key, func(out string) error {
		cmd := exec.Command(goBin, append(flags, "-o", out, ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "CGO_ENABLED=0")
		return run(cmd)
	})
}

// CCommand builds a C file as a WASI command module (exports _start).
func CCommand(tb testing.TB, file string) []byte {
	tb.Helper()
	return buildC(tb, file)
}

// CReactor builds a C file as a reactor module exporting aegis_handle
// (and _initialize, which sets up wasi-libc).
func CReactor(tb testing.TB, file string) []byte {
	tb.Helper()
	return buildC(tb, file, "-mexec-model=reactor", "-Wl,--export=aegis_handle")
}

// InstallHint says how to get a C toolchain for wasm32-wasi.
const InstallHint = "install clang for wasm32-wasi (Debian/Ubuntu: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)"

var (
	clangOnce sync.Once
	clangErr  error
	clangVer  string
)

// requireClang checks once per process that clang can build wasm32-wasi.
// Without it the C tests skip locally and fail in CI (env CI set), where a
// silent skip would hide a missing toolchain.
func requireClang(tb testing.TB) {
	tb.Helper()
	clangOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aegis-clang-probe")
		if err != nil {
			clangErr = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "probe.c")
		if err := os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o600); err != nil {
			clangErr = err
			return
		}
		clangErr = run(exec.Command("clang", "--target=wasm32-wasi", "-o", filepath.Join(dir, "probe.wasm"), src))
		if clangErr == nil {
			out, _ := exec.Command("clang", "--version").Output()
			clangVer = string(out)
		}
	})
	if clangErr != nil {
		msg := fmt.Sprintf("wasmbuild: clang cannot build wasm32-wasi: %v; %s", clangErr, InstallHint)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
}

func buildC(tb testing.TB, file string, extra ...string) []byte {
	tb.Helper()
	requireClang(tb)
	file, err := filepath.Abs(file)
	if err != nil {
		tb.Fatal(err)
	}
	include := findSDKHeaders(file)
	flags := append([]string{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror"}, extra...)
	h := sha256.New()
	// The include path is absolute and differs between checkouts; the
	// headers' contents are what matters, and are hashed below.
	fmt.Fprintf(h, "c\x00%s\x00%s\x00", clangVer, strings.Join(flags, " "))
	if include != "" {
		flags = append(flags, "-I", include)
	}
	hashFile(tb, h, file)
	if include != "" {
		hashTree(tb, h, include)
	}
	key := hex.EncodeToString(h.Sum(nil))
	return cached(tb, key, func(out string) error {
		return run(exec.Command("clang", append(flags, "-o", out, file)...))
	})
}

// findSDKHeaders returns the nearest ancestor's sdk/c directory, where
// aegis.h lives, or "" if there is none.
func findSDKHeaders(file string) string {
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "sdk", "c")
		if _, err := os.Stat(filepath.Join(cand, "aegis.h")); err == nil {
			return cand
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// inProcess deduplicates builds of the same key among parallel tests of
// one test binary; the rename dedupes across binaries.
var inProcess sync.Map // key -> *sync.Once

func cached(tb testing.TB, key string, build func(out string) error) []byte {
	tb.Helper()
	dst := filepath.Join(cacheDir(), key+".wasm")
	onceV, _ := inProcess.LoadOrStore(key, &sync.Once{})
	var buildErr error
	onceV.(*sync.Once).Do(func() {
		if _, err := os.Stat(dst); err == nil {
			return
		}
		if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
			buildErr = err
			return
		}
		tmp, err := os.CreateTemp(cacheDir(), key+".*.tmp")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := build(tmp.Name()); err != nil {
			buildErr = err
			return
		}
		buildErr = os.Rename(tmp.Name(), dst)
	})
	if buildErr != nil {
		inProcess.Delete(key) // let a later test retry and report its own failure
		tb.Fatalf("wasmbuild: %v", buildErr)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		tb.Fatalf("wasmbuild: %v", err)
	}
	return b
}

func run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return nil
}

var goVersions sync.Map // go binary -> version

// goVersion asks the go command for its version once per process; the
// test binary's own runtime.Version may differ from the go in PATH.
func goVersion(tb testing.TB, goBin string) string {
	tb.Helper()
	if v, ok := goVersions.Load(goBin); ok {
		return v.(string)
	}
	out, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		tb.Fatalf("wasmbuild: %s env GOVERSION: %v", goBin, err)
	}
	v := strings.TrimSpace(string(out))
	goVersions.Store(goBin, v)
	return v
}

// hashTree adds every regular file under root (path and content, in a
// stable order) to h. Build outputs in the tree are skipped so they do not
// feed back into the key.
func hashTree(tb testing.TB, h interface{ Write([]byte) (int, error) }, root string) {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasSuffix(path, ".wasm") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("wasmbuild: %v", err)
	}
	slices.Sort(files)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		hashFile(tb, h, f)
	}
}

func hashFile(tb testing.TB, h interface{ Write([]byte) (int, error) }, path string) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("wasmbuild: %v", err)
	}
	fmt.Fprintf(h, "%d\x00", len(b))
	h.Write(b)
}

// localReplaces returns the directories that go.mod's replace directives
// point to on the local file system.
func localReplaces(tb testing.TB, dir string) []string {
	tb.Helper()
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			tb.Fatalf("wasmbuild: %s has no go.mod", dir)
		}
		tb.Fatal(err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "replace ")
		_, target, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		fields := strings.Fields(target)
		if len(fields) == 0 {
			continue
		}
		target = fields[0]
		if strings.HasPrefix(target, ".") || filepath.IsAbs(target) {
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			dirs = append(dirs, target)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return dirs
}

// JSComponent builds the JavaScript function in dir (a package.json and
// its modules) into a component with aegis build, once per content: the
// files are copied to a temporary directory with the test command's
// componentize-js install (AEGIS_JS_MODULES) linked in as node_modules,
// so nothing is fetched. Without AEGIS_JS_MODULES it skips locally and
// fails in CI, as the C builds do without clang.
func JSComponent(tb testing.TB, dir string) []byte {
	tb.Helper()
	modules := os.Getenv("AEGIS_JS_MODULES")
	if modules == "" {
		msg := "wasmbuild: AEGIS_JS_MODULES is not set: scripts/test.sh installs componentize-js and sets it"
		if os.Getenv("AEGIS_REQUIRE_JS") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "js\x00%s\x00", build.ComponentizeJSVersion)
	h.Write(aegisplatform.WIT)
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, e.Name())
			fmt.Fprintf(h, "%s\x00", e.Name())
			hashFile(tb, h, filepath.Join(dir, e.Name()))
		}
	}
	key := hex.EncodeToString(h.Sum(nil))
	return cached(tb, key, func(out string) error {
		work, err := os.MkdirTemp("", "aegis-jsbuild")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		for _, name := range files {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
				return err
			}
		}
		if err := os.Symlink(filepath.Join(modules, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
			return err
		}
		manifest := filepath.Join(work, "aegis.yaml")
		if _, err := os.Stat(manifest); err != nil {
			err = os.WriteFile(manifest, []byte("app: wasmbuild\nfunctions:\n  fn:\n    source: .\n"), 0o644)
			if err != nil {
				return err
			}
		}
		arts, err := build.Build(context.Background(), manifest, nil)
		if err != nil {
			return err
		}
		if len(arts) != 1 {
			return fmt.Errorf("%s: %d functions built, want 1", dir, len(arts))
		}
		b, err := os.ReadFile(arts[0].Path)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}
