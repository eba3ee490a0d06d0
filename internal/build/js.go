package build

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	aegisplatform "github.com/aegis-platform/aegis/wit/aegis-platform"
)

// A JavaScript function is a directory with a package.json. It is built
// into a WebAssembly component (WASI 0.2) exporting
// wasi:http/incoming-handler by componentize-js, from npm, run with node:
// the function answers fetch events and imports the platform's
// capabilities as aegis:platform/kv@0.1.0 and the like.

// ComponentizeJSVersion is the componentize-js release aegis build is made
// for: its engine imports WASI wasiVersion, which the world a function is
// built against must name. `aegis new js` pins it in package.json.
const ComponentizeJSVersion = "0.23.0"

// componentizeJS is the npm package that builds the component.
const componentizeJS = "@bytecodealliance/componentize-js"

// wasiVersion is the WASI release componentize-js ComponentizeJSVersion's
// engine (StarlingMonkey) imports, wasi:http/types@0.2.10 and the rest: a
// world naming another fails to build.
const wasiVersion = "0.2.10"

// wasiPackages are the WASI packages wasi:http/proxy includes and uses,
// as jco names their directories.
var wasiPackages = []string{"wasi-cli", "wasi-clocks", "wasi-filesystem", "wasi-http", "wasi-io", "wasi-random", "wasi-sockets"}

// jsWorld is the world every JavaScript function is built against: the
// platform's capabilities to import, and wasi:http/proxy, whose
// incoming-handler the component exports (componentize-js's fetch event)
// and whose outgoing-handler is fetch, under the egress grants.
const jsWorld = `package local:function;

world function {
  include aegis:platform/function@` + aegisplatform.Version + `;
  include wasi:http/proxy@` + wasiVersion + `;
}
`

// componentizeScript runs componentize-js (componentize.mjs).
//
//go:embed componentize.mjs
var componentizeScript []byte

// ErrNoNode is returned when node or npm, which build JavaScript
// functions, is not on PATH.
var ErrNoNode = errors.New("node and npm are needed to build JavaScript functions (a source directory with a package.json): " +
	"install Node.js 20 or later with npm, from nodejs.org or your system's nodejs and npm packages")

// isJS reports whether srcDir is a JavaScript function (it has a
// package.json).
func isJS(srcDir string) bool {
	fi, err := os.Stat(filepath.Join(srcDir, "package.json"))
	return err == nil && fi.Mode().IsRegular()
}

// jsBuild builds the JavaScript function in srcDir into the component out.
// When srcDir's node_modules lacks componentize-js, npm install runs there
// first (installing reports it: it takes a while and needs the network).
// Everything else is written under out's directory and removed after: the
// WIT the function is built against and componentize-js's own work files.
func jsBuild(ctx context.Context, srcDir, out string, installing func()) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return ErrNoNode
	}
	// componentize-js maps the working directory into the engine, so
	// that main's relative imports resolve: under its real path, which
	// is what node's working directory is.
	if srcDir, err = filepath.EvalSymlinks(srcDir); err != nil {
		return err
	}
	main, err := packageMain(srcDir)
	if err != nil {
		return err
	}
	if componentizeVersion(srcDir) == "" {
		installing()
		if err := npmInstall(ctx, srcDir); err != nil {
			return err
		}
	}
	builtin, err := jcoBuiltinWIT(srcDir)
	if err != nil {
		return err
	}
	wasi, err := wasiWIT(builtin)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".componentize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	witDir := filepath.Join(tmp, "wit")
	if err := writeWIT(witDir, wasi); err != nil {
		return err
	}
	script := filepath.Join(tmp, "componentize.mjs")
	if err := os.WriteFile(script, componentizeScript, 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, node, script, srcDir, main, witDir, out)
	cmd.Dir = srcDir
	// componentize-js works in the temporary directory node is told of.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if msg, err := runCompiler(cmd, true); err != nil {
		if v := componentizeVersion(srcDir); v != ComponentizeJSVersion {
			msg += fmt.Sprintf("\n(aegis build is made for %s %s, whose engine imports WASI %s; this function has %s)", componentizeJS, ComponentizeJSVersion, wasiVersion, v)
		}
		return fmt.Errorf("componentize-js: %w\n%s", err, msg)
	}
	return nil
}

// packageMain is the module a JavaScript function starts from, relative to
// srcDir: package.json's "main", index.js when it names none. It must be a
// file inside srcDir.
func packageMain(srcDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(srcDir, "package.json"))
	if err != nil {
		return "", err
	}
	var pkg struct {
		Main string `json:"main"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("read package.json: %w", err)
	}
	main := pkg.Main
	if main == "" {
		main = "index.js"
	}
	rel := filepath.Clean(filepath.FromSlash(main))
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("package.json: \"main\" %q is not a file inside the function's directory", main)
	}
	if fi, err := os.Stat(filepath.Join(srcDir, rel)); err != nil || !fi.Mode().IsRegular() {
		if pkg.Main == "" {
			return "", errors.New("package.json names no \"main\" and there is no index.js: set \"main\" to the module that adds the fetch event listener")
		}
		return "", fmt.Errorf("package.json: \"main\" is %s, which does not exist", main)
	}
	return rel, nil
}

// componentizeVersion is the version of componentize-js in srcDir's
// node_modules, "" when there is none.
func componentizeVersion(srcDir string) string {
	b, err := os.ReadFile(filepath.Join(srcDir, "node_modules", filepath.FromSlash(componentizeJS), "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Version == "" {
		return "unknown"
	}
	return pkg.Version
}

// npmInstall installs the dependencies of package.json in srcDir, which
// must bring componentize-js.
func npmInstall(ctx context.Context, srcDir string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return ErrNoNode
	}
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund")
	cmd.Dir = srcDir
	if msg, err := runCompiler(cmd, true); err != nil {
		return fmt.Errorf("npm install: %w\n%s", err, msg)
	}
	if componentizeVersion(srcDir) == "" {
		return fmt.Errorf("npm install did not install %s: package.json must depend on it (npm install --save-dev %s@%s)",
			componentizeJS, componentizeJS, ComponentizeJSVersion)
	}
	return nil
}

// jcoBuiltinWIT is the directory of WASI WIT files that jco, a dependency
// of componentize-js, ships: where node would find jco from componentize-js.
func jcoBuiltinWIT(srcDir string) (string, error) {
	modules := filepath.Join(srcDir, "node_modules")
	jco := filepath.FromSlash("@bytecodealliance/jco/lib/wit/builtin")
	candidates := []string{
		filepath.Join(modules, filepath.FromSlash(componentizeJS), "node_modules", jco),
		filepath.Join(modules, jco),
	}
	for _, dir := range candidates {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, nil
		}
	}
	return "", fmt.Errorf("the WASI WIT files are missing: there is no %s (they come with @bytecodealliance/jco, which %s depends on; npm install in %s should bring it)",
		candidates[len(candidates)-1], componentizeJS, srcDir)
}

var wasiRelease = regexp.MustCompile(`^0\.2\.(\d+)$`)

// wasiWIT reads the WASI packages of wasiVersion (wasiPackages, each
// directory's .wit files, keyed "wasi-http/package.wit") from jco's builtin
// WIT directory, which holds one directory per WASI release. jco does not
// always ship a whole release the engine imports: jco 1.35 has only clocks,
// io and sockets under 0.2.10, and every package under 0.2.12. WASI 0.2
// releases only add to their interfaces, and a component imports only the
// functions it uses, so a later 0.2 release with its version references
// renamed to wasiVersion serves the engine as well. The first complete
// release from wasiVersion on is taken.
func wasiWIT(builtin string) (map[string][]byte, error) {
	entries, err := os.ReadDir(builtin)
	if err != nil {
		return nil, fmt.Errorf("the WASI WIT files: %w", err)
	}
	want, _ := wasiPatch(wasiVersion)
	var releases []int
	for _, e := range entries {
		if p, ok := wasiPatch(e.Name()); ok && e.IsDir() && p >= want {
			releases = append(releases, p)
		}
	}
	slices.Sort(releases)
	for _, p := range releases {
		release := "0.2." + strconv.Itoa(p)
		files, ok := readWASIRelease(filepath.Join(builtin, release))
		if !ok {
			continue
		}
		if release != wasiVersion {
			ref := regexp.MustCompile(`@` + regexp.QuoteMeta(release) + `\b`)
			for name, b := range files {
				files[name] = ref.ReplaceAll(b, []byte("@"+wasiVersion))
			}
		}
		return files, nil
	}
	return nil, fmt.Errorf("%s holds the WASI packages %s neither for %s, which componentize-js %s imports, nor for a later 0.2 release",
		builtin, strings.Join(wasiPackages, ", "), wasiVersion, ComponentizeJSVersion)
}

// wasiPatch is the patch number of a WASI 0.2 release's name.
func wasiPatch(name string) (int, bool) {
	m := wasiRelease.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	p, err := strconv.Atoi(m[1])
	return p, err == nil
}

// readWASIRelease reads the .wit files of every package in wasiPackages
// under dir; false when one is missing.
func readWASIRelease(dir string) (map[string][]byte, bool) {
	files := map[string][]byte{}
	for _, pkg := range wasiPackages {
		wits, _ := filepath.Glob(filepath.Join(dir, pkg, "*.wit"))
		if len(wits) == 0 {
			return nil, false
		}
		for _, w := range wits {
			b, err := os.ReadFile(w)
			if err != nil {
				return nil, false
			}
			files[pkg+"/"+filepath.Base(w)] = b
		}
	}
	return files, true
}

// writeWIT writes the WIT directory a function is built against: the
// world (jsWorld), and under deps/ the platform's package and the WASI
// packages.
func writeWIT(dir string, wasi map[string][]byte) error {
	files := map[string][]byte{
		"world.wit":                        []byte(jsWorld),
		"deps/aegis-platform/platform.wit": aegisplatform.WIT,
	}
	for name, b := range wasi {
		files["deps/"+name] = b
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
