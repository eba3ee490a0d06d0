// Package secrets finds keys, tokens and private keys written into an
// app (docs/scan.md): in its function sources, its manifest, its schema
// files and the data of its built modules. Detection is gitleaks' rule
// set, used as a library (the only package importing it), not a list of
// patterns of our own. A finding names the file, the line and the kind of
// secret; the value, or any part of it, is never in a finding.
package secrets

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"

	"github.com/aegis-platform/aegis/internal/scan"
)

// Rule is the rule every secret finding documents; a finding's Rule is
// "secret/" and the detector's own rule id (secret/aws-access-token).
var Rule = scan.Rule{ID: "secret", Severity: scan.Critical, Title: "a secret is written into the app",
	Fix: "remove it, revoke it where it was issued (it is in the history), and give the function the new one as a secret: aegis secrets set APP NAME, granted with secrets: [NAME] (docs/vault.md)"}

// Rules lists the rule secret findings document.
func Rules() []scan.Rule { return []scan.Rule{Rule} }

// Bounds on what one scan reads: a file larger than maxFile is not
// source (and is skipped), and an app of more than maxFiles files is
// scanned up to that many and says so.
const (
	maxFile  = 1 << 20
	maxFiles = 10000
)

// moduleRules are the detector's rules applied to a built module's data:
// those whose secrets carry a prefix of their own. A Go module's data is
// megabytes of runtime and library strings, on which the generic
// high-entropy rules fire on nothing at all; a false critical finding
// would refuse every deploy.
var moduleRules = []string{
	"aws-access-token", "private-key", "github-pat", "github-fine-grained-pat", "github-oauth",
	"github-app-token", "gitlab-pat", "slack-bot-token", "slack-user-token", "slack-webhook-url",
	"stripe-access-token", "gcp-api-key", "sendgrid-api-token", "npm-access-token",
	"openai-api-key", "anthropic-api-key",
}

// moduleDelimiter is the ending some rules require after a secret (a
// quote, a space, the end of the line): in a module's data, strings lie
// end to end with nothing between them, so neither it nor a word boundary
// can be asked for there. The rules kept for modules begin with a prefix
// of their own and have a fixed or bounded length, so they need neither.
const moduleDelimiter = `(?:[\x60'"\s;]|\\[nr]|$)`

// forModule is r with its boundaries taken off, for a module's data.
func forModule(r config.Rule) config.Rule {
	if r.Regex == nil {
		return r
	}
	expr := strings.TrimSuffix(strings.ReplaceAll(r.Regex.String(), `\b`, ""), moduleDelimiter)
	if re, err := regexp.Compile(expr); err == nil {
		r.Regex = re
	}
	return r
}

var (
	loadOnce             sync.Once
	fullConfig, modConfg config.Config
	loadErr              error
)

// configs translates gitleaks' default rule set once (its loader uses a
// process-wide viper instance, so never twice at a time).
func configs() (full, module config.Config, err error) {
	loadOnce.Do(func() {
		// gitleaks logs what it matched at its debug and trace levels:
		// never let it write, whatever its level is set to elsewhere.
		logging.Logger = zerolog.Nop()
		d, err := detect.NewDetectorDefaultConfig()
		if err != nil {
			loadErr = fmt.Errorf("load the secret rules: %w", err)
			return
		}
		fullConfig = d.Config
		modConfg = fullConfig
		modConfg.Rules, modConfg.Keywords, modConfg.OrderedRules = map[string]config.Rule{}, map[string]struct{}{}, nil
		for _, id := range moduleRules {
			r, ok := fullConfig.Rules[id]
			if !ok {
				continue
			}
			modConfg.Rules[id] = forModule(r)
			modConfg.OrderedRules = append(modConfg.OrderedRules, id)
			for _, k := range r.Keywords {
				modConfg.Keywords[strings.ToLower(k)] = struct{}{}
			}
		}
	})
	return fullConfig, modConfg, loadErr
}

// detectIn runs the detector with cfg over content and returns, per
// finding, its rule and 1-based line.
func detectIn(cfg config.Config, content []byte) []hit {
	d := detect.NewDetector(cfg)
	var hits []hit
	for _, f := range d.DetectBytes(content) {
		hits = append(hits, hit{rule: f.RuleID, what: f.Description, line: f.StartLine + 1})
	}
	return hits
}

type hit struct {
	rule, what string
	line       int
}

// finding is the finding of a hit in file: its id names rule, file and
// line, and a digest of them, never the value.
func finding(file, function string, h hit) scan.Finding {
	where := file
	if h.line > 0 {
		where = fmt.Sprintf("%s:%d", file, h.line)
	}
	what := h.what
	if what == "" {
		what = h.rule
	}
	line := h.line
	if strings.HasPrefix(file, "module:") {
		line = 0
		where = file
	}
	return scan.Finding{ID: "secret/" + h.rule + ":" + where, Rule: "secret/" + h.rule, Severity: Rule.Severity,
		Function: function, File: file, Line: line,
		Message: fmt.Sprintf("%s is written here (%s); the value is not shown", kind(what), h.rule), Fix: Rule.Fix}
}

// kind is the detector's description, first letter lower-cased, as the
// subject of a sentence.
func kind(desc string) string {
	desc = strings.TrimSpace(desc)
	if desc == "" {
		return "a secret"
	}
	if len(desc) > 200 {
		desc = desc[:200]
	}
	return "a secret (" + strings.TrimSuffix(desc, ".") + ")"
}

// CheckBytes scans content the server has (a manifest, a schema file) as
// file, of function ("" for the app's own files).
func CheckBytes(file, function string, content []byte) []scan.Finding {
	full, _, err := configs()
	if err != nil || len(content) > maxFile || !utf8.Valid(content) {
		return nil
	}
	var out []scan.Finding
	for _, h := range detectIn(full, content) {
		out = append(out, finding(file, function, h))
	}
	return out
}

// CheckModule scans the data of a built module: the bytes of its data
// segments (where a string constant compiled into it lives), with the
// rules whose secrets have a prefix of their own. File is
// "module:FUNCTION"; a module that does not parse yields nothing here
// (the registry refuses it with its own error).
func CheckModule(function string, wasm []byte) []scan.Finding {
	_, mod, err := configs()
	if err != nil {
		return nil
	}
	data, err := DataSegments(wasm)
	if err != nil {
		return nil
	}
	var out []scan.Finding
	seen := map[string]bool{}
	for _, h := range detectIn(mod, printable(data)) {
		h.line = 0
		f := finding("module:"+function, function, h)
		if !seen[f.ID] {
			seen[f.ID] = true
			out = append(out, f)
		}
	}
	return out
}

// printable turns binary data into lines of its printable runs, so the
// detector's line-based matching sees each string on its own.
func printable(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for _, b := range data {
		if b >= 0x20 && b < 0x7f {
			out = append(out, b)
		} else if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out
}

// Check scans every file of each function's source, the manifest and the
// schema files of app. Files that are not source are skipped: build
// outputs (.aegis/), version-control and dependency directories (.git,
// vendor, node_modules), files over 1 MiB and files that are not UTF-8
// text. A source shared by several functions (one go.mod directory)
// is scanned once, its findings naming the first function in name order.
func Check(ctx context.Context, app *scan.App) ([]scan.Finding, error) {
	full, _, err := configs()
	if err != nil {
		return nil, err
	}
	var out []scan.Finding
	out = append(out, scanText(full, app.ManifestFile, "", app.ManifestText)...)
	for _, name := range slices.Sorted(maps.Keys(app.Schemas)) {
		out = append(out, scanText(full, name, "", app.Schemas[name])...)
	}
	scanned := map[string]bool{}
	files := 0
	for _, fn := range slices.Sorted(maps.Keys(app.Sources)) {
		root := app.Sources[fn]
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a file that cannot be read is not ours to judge
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() {
				switch d.Name() {
				case ".aegis", ".git", "vendor", "node_modules", "target":
					if path != root {
						return filepath.SkipDir
					}
				}
				return nil
			}
			if !d.Type().IsRegular() || scanned[path] || filepath.Ext(path) == ".wasm" {
				return nil
			}
			scanned[path] = true
			if files++; files > maxFiles {
				return fs.SkipAll
			}
			info, err := d.Info()
			if err != nil || info.Size() > maxFile {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			rel := app.Rel(path)
			if rel == app.ManifestFile || app.Schemas[rel] != nil {
				return nil // scanned above
			}
			out = append(out, scanText(full, rel, fn, b)...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func scanText(cfg config.Config, file, function string, content []byte) []scan.Finding {
	if len(content) > maxFile || !utf8.Valid(content) {
		return nil
	}
	var out []scan.Finding
	for _, h := range detectIn(cfg, content) {
		out = append(out, finding(file, function, h))
	}
	return out
}
