// Package sdkproxy hands the Go SDK this binary carries to the Go
// toolchain. The SDK (sdk/go) is a module of its own that is published
// nowhere a developer could fetch it from, so the binary embeds its files
// and writes them, once per SDK version, as a module proxy on disk (the
// GOPROXY file layout: list, .info, .mod and .zip under the user cache
// directory). Every Go build the binary runs puts that directory first in
// GOPROXY and the SDK in GONOSUMDB; `aegis new go` does the same for the
// go.sum it writes, and the README shows how to point `go get`, `go mod
// tidy` and editors at it. Nothing goes to the network for the SDK, and a
// function always builds against the SDK of the binary that deploys it.
package sdkproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"

	sdk "github.com/aegis-platform/aegis/sdk/go"
)

// ModulePath is the Go SDK's module path.
const ModulePath = "github.com/aegis-platform/aegis/sdk/go"

// Version is the version of the SDK this binary carries: the binary's own
// release version when it was built from one, otherwise a pseudo-version
// whose revision is a digest of the SDK's files. A module cache keeps a
// version's files forever, so a changed SDK must never come under a
// version a cache has seen; the digest guarantees it.
func Version() string { return version() }

var version = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && releaseVersion(bi.Main.Version) {
		return bi.Main.Version
	}
	return "v0.0.0-00010101000000-" + digest()[:12]
})

// releaseVersion reports whether v is a tagged release: valid semver, not
// a pseudo-version and without build metadata (+dirty).
func releaseVersion(v string) bool {
	return semver.IsValid(v) && !module.IsPseudoVersion(v) && semver.Build(v) == ""
}

// digest is the SHA-256 of the SDK's file names and contents.
func digest() string {
	h := sha256.New()
	for _, name := range files() {
		b, err := fs.ReadFile(sdk.Source, name)
		if err != nil {
			panic(fmt.Sprintf("read the embedded SDK: %v", err)) // embedded at build time: cannot fail
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// files lists the SDK's embedded files in name order.
func files() []string {
	entries, err := fs.ReadDir(sdk.Source, ".")
	if err != nil {
		panic(fmt.Sprintf("list the embedded SDK: %v", err)) // embedded at build time: cannot fail
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// DefaultDir is where the proxy lives: aegis/goproxy under the user cache
// directory ($XDG_CACHE_HOME or ~/.cache on Linux).
func DefaultDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache directory for the SDK: %w", err)
	}
	return filepath.Join(cache, "aegis", "goproxy"), nil
}

// Ensure writes this binary's SDK version into the proxy at dir unless it
// is there already, and returns dir. Files are written under temporary
// names and renamed, so concurrent writers and readers (two builds, the Go
// toolchain) never see half a file.
func Ensure(dir string) (string, error) {
	v := Version()
	vdir := filepath.Join(dir, filepath.FromSlash(ModulePath), "@v")
	if _, err := os.Stat(filepath.Join(vdir, v+".zip")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", fmt.Errorf("write the SDK module proxy: %w", err)
	}
	gomod, err := fs.ReadFile(sdk.Source, "go.mod")
	if err != nil {
		return "", fmt.Errorf("read the embedded SDK: %w", err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{v, time.Unix(0, 0).UTC()})
	if err != nil {
		return "", err
	}
	var zip bytes.Buffer
	var zfiles []modzip.File
	for _, name := range files() {
		zfiles = append(zfiles, embeddedFile(name))
	}
	if err := modzip.Create(&zip, module.Version{Path: ModulePath, Version: v}, zfiles); err != nil {
		return "", fmt.Errorf("zip the SDK module: %w", err)
	}
	// The zip last: its presence is what says the version is complete.
	for _, f := range []struct {
		name string
		data []byte
	}{{v + ".mod", gomod}, {v + ".info", info}, {v + ".zip", zip.Bytes()}} {
		if err := writeAtomic(filepath.Join(vdir, f.name), f.data); err != nil {
			return "", fmt.Errorf("write the SDK module proxy: %w", err)
		}
	}
	if err := writeList(vdir); err != nil {
		return "", fmt.Errorf("write the SDK module proxy: %w", err)
	}
	return dir, nil
}

// writeList writes @v/list with every complete version in vdir: binaries
// of different versions share the cache directory.
func writeList(vdir string) error {
	entries, err := os.ReadDir(vdir)
	if err != nil {
		return err
	}
	var versions []string
	for _, e := range entries {
		if v, ok := strings.CutSuffix(e.Name(), ".zip"); ok && semver.IsValid(v) {
			versions = append(versions, v)
		}
	}
	semver.Sort(versions)
	var b strings.Builder
	for _, v := range versions {
		b.WriteString(v + "\n")
	}
	return writeAtomic(filepath.Join(vdir, "list"), []byte(b.String()))
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// embeddedFile is one SDK file for the module zip.
type embeddedFile string

func (f embeddedFile) Path() string                 { return string(f) }
func (f embeddedFile) Lstat() (os.FileInfo, error)  { return fs.Stat(sdk.Source, string(f)) }
func (f embeddedFile) Open() (io.ReadCloser, error) { return sdk.Source.Open(string(f)) }

// Settings are the two go environment variables that let the Go toolchain
// find the SDK.
type Settings struct {
	GOPROXY   string // the proxy first, then what the developer's Go uses
	GONOSUMDB string // the developer's, plus the SDK: no checksum database knows it
}

// Current returns the Settings for the proxy at dir, given environ. The
// developer's own values are read with `go env`, so a `go env -w` setting
// is kept ("off" included).
func Current(ctx context.Context, goBin, dir string, environ []string) (Settings, error) {
	cmd := exec.CommandContext(ctx, goBin, "env", "-json", "GOPROXY", "GONOSUMDB")
	cmd.Env = environ
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return Settings{}, fmt.Errorf("go env: %w: %s", err, bytes.TrimSpace(exit.Stderr))
		}
		return Settings{}, fmt.Errorf("go env: %w", err)
	}
	var cur Settings
	if err := json.Unmarshal(out, &cur); err != nil {
		return Settings{}, fmt.Errorf("go env: %w", err)
	}
	return withProxy(dir, cur), nil
}

// Env returns environ for a go command that finds the SDK: environ with
// the Settings of Current appended. Everything else is left as it is.
func Env(ctx context.Context, goBin, dir string, environ []string) ([]string, error) {
	set, err := Current(ctx, goBin, dir, environ)
	if err != nil {
		return nil, err
	}
	return set.appendTo(environ), nil
}

// withProxy puts the proxy at dir into the developer's settings cur.
func withProxy(dir string, cur Settings) Settings {
	url := FileURL(dir)
	if cur.GOPROXY == "" {
		cur.GOPROXY = "https://proxy.golang.org,direct"
	}
	if first, _, _ := strings.Cut(cur.GOPROXY, ","); first != url {
		cur.GOPROXY = url + "," + cur.GOPROXY
	}
	if !slices.Contains(strings.Split(cur.GONOSUMDB, ","), ModulePath) {
		if cur.GONOSUMDB != "" {
			cur.GONOSUMDB += ","
		}
		cur.GONOSUMDB += ModulePath
	}
	return cur
}

// Prepared writes the proxy at DefaultDir if it lacks this binary's SDK
// and returns the Settings that reach it: what every go command the binary
// runs, and `aegis env`, start from.
func Prepared(ctx context.Context, goBin string, environ []string) (Settings, error) {
	dir, err := DefaultDir()
	if err != nil {
		return Settings{}, err
	}
	if _, err := Ensure(dir); err != nil {
		return Settings{}, err
	}
	return Current(ctx, goBin, dir, environ)
}

// GoEnv is Prepared as an environment: environ with the Settings appended.
func GoEnv(ctx context.Context, goBin string, environ []string) ([]string, error) {
	set, err := Prepared(ctx, goBin, environ)
	if err != nil {
		return nil, err
	}
	return set.appendTo(environ), nil
}

func (s Settings) appendTo(environ []string) []string {
	return append(slices.Clone(environ), "GOPROXY="+s.GOPROXY, "GONOSUMDB="+s.GONOSUMDB)
}

// FileURL is the GOPROXY entry for the proxy at dir.
func FileURL(dir string) string { return "file://" + filepath.ToSlash(dir) }
