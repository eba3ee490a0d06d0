// Package gate runs the deploy gate's checks over an app (docs/scan.md):
// manifest risk rules, secrets in sources, manifests, schema files and
// built modules, and known vulnerabilities in dependencies. Source is what
// `aegis scan` and `aegis deploy` run from the app's directory; Deployed
// is what the server runs over what a deploy carries (no sources), so a
// client that skips its own scan is still held to the gate. Which level of
// finding stops what is the caller's decision (scan.Blocking).
package gate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/aegis-platform/aegis/internal/scan/rules"
	"github.com/aegis-platform/aegis/internal/scan/secrets"
	"github.com/aegis-platform/aegis/internal/scan/vuln"
)

// Options set what the checks need from outside the app.
type Options struct {
	// VulnDB is the OSV database vulnerabilities are looked up in: a
	// directory or an http(s) URL. Empty: dependencies are not checked,
	// and a note says so; the gate never reaches for a database the
	// operator did not name.
	VulnDB string
}

// Result is what a gate run found, and what it could not check.
type Result struct {
	Findings []scan.Finding
	// Notes say what was not checked and why (no database set): printed
	// beside the findings, never counted as one.
	Notes []string
}

// ErrNoVulnDB: no vulnerability database was set; dependencies were not
// checked.
var ErrNoVulnDB = errors.New("vulnerable dependencies not checked: no database (--vulndb DIR|URL or AEGIS_VULNDB)")

// Rules lists every rule of every check, sorted by id: what a SARIF log
// declares and docs/scan.md documents.
func Rules() []scan.Rule {
	var all []scan.Rule
	all = append(all, rules.Rules()...)
	all = append(all, secrets.Rules()...)
	all = append(all, vuln.Rules()...)
	slices.SortFunc(all, func(a, b scan.Rule) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return all
}

// Source runs every check over an app read from its directory
// (scan.LoadApp): the manifest's rules; secrets in the function sources,
// the manifest and schema files, and in app.Modules when the app was
// built; vulnerable dependencies of Go sources (reachability-aware) and
// of prebuilt modules.
func Source(ctx context.Context, app *scan.App, opts Options) (*Result, error) {
	res := &Result{}
	res.Findings = append(res.Findings, rules.Check(app)...)
	found, err := secrets.Check(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("scan %s for secrets: %w", app.Manifest.App, err)
	}
	res.Findings = append(res.Findings, found...)
	for _, fn := range slices.Sorted(maps.Keys(app.Modules)) {
		res.Findings = append(res.Findings, moduleSecrets(fn, app.Modules[fn])...)
	}
	if opts.VulnDB == "" {
		res.Notes = append(res.Notes, ErrNoVulnDB.Error())
	} else {
		found, err := vuln.Check(ctx, app, opts.VulnDB)
		if err != nil {
			return nil, fmt.Errorf("scan %s for vulnerable dependencies: %w", app.Manifest.App, err)
		}
		res.Findings = append(res.Findings, found...)
	}
	res.Findings = dedupe(res.Findings)
	scan.Sort(res.Findings)
	return res, nil
}

// Deployed runs the checks that need no sources over what a deploy
// carries: the manifest's rules; secrets in the manifest, its schema files
// and every module's data; and, with a database, the dependencies a Go
// module records in its build information (not reachability-aware: the
// server has no sources).
func Deployed(ctx context.Context, app *scan.App, opts Options) (*Result, error) {
	res := &Result{}
	res.Findings = append(res.Findings, rules.Check(app)...)
	res.Findings = append(res.Findings, secrets.CheckBytes(app.ManifestFile, "", app.ManifestText)...)
	for _, name := range slices.Sorted(maps.Keys(app.Schemas)) {
		res.Findings = append(res.Findings, secrets.CheckBytes(name, "", app.Schemas[name])...)
	}
	for _, fn := range slices.Sorted(maps.Keys(app.Modules)) {
		res.Findings = append(res.Findings, moduleSecrets(fn, app.Modules[fn])...)
		if opts.VulnDB == "" {
			continue
		}
		found, err := vuln.CheckModule(ctx, fn, app.Modules[fn], opts.VulnDB)
		if err != nil {
			return nil, fmt.Errorf("check the dependencies of %s: %w", fn, err)
		}
		res.Findings = append(res.Findings, found...)
	}
	if opts.VulnDB == "" {
		res.Notes = append(res.Notes, ErrNoVulnDB.Error())
	}
	res.Findings = dedupe(res.Findings)
	scan.Sort(res.Findings)
	return res, nil
}

// dedupe keeps the first finding of each id: two checks (or a module and
// its source) may see the same thing.
func dedupe(fs []scan.Finding) []scan.Finding {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		key := f.ID + "\x00" + f.Function
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, f)
	}
	return out
}

// moduleCache remembers the secrets found in modules already scanned, by
// function and module digest: scanning a Go module's data takes a while,
// and a deploy sends the same modules again and again (one function
// changed, the others not). The findings of a module never change.
var moduleCache = struct {
	sync.Mutex
	m     map[[sha256.Size]byte][]scan.Finding
	order [][sha256.Size]byte
}{m: map[[sha256.Size]byte][]scan.Finding{}}

// maxCachedModules bounds moduleCache; the oldest entry goes first.
const maxCachedModules = 512

func moduleSecrets(fn string, wasm []byte) []scan.Finding {
	h := sha256.New()
	h.Write([]byte(fn + "\x00"))
	h.Write(wasm)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	moduleCache.Lock()
	found, ok := moduleCache.m[key]
	moduleCache.Unlock()
	if ok {
		return slices.Clone(found)
	}
	found = secrets.CheckModule(fn, wasm)
	moduleCache.Lock()
	if _, ok := moduleCache.m[key]; !ok {
		if len(moduleCache.order) >= maxCachedModules {
			delete(moduleCache.m, moduleCache.order[0])
			moduleCache.order = moduleCache.order[1:]
		}
		moduleCache.m[key] = found
		moduleCache.order = append(moduleCache.order, key)
	}
	moduleCache.Unlock()
	return slices.Clone(found)
}
