// Package rulefile owns guard.yaml, the file an operator tunes the guard
// with (`aegis guard apply FILE`, docs/guard.md): its strict parsing into
// guard rules, every problem naming the file, line and field; its
// formatting, which Parse reads back to the same rules; and the record
// of the file applied to the platform that every server reads from the
// key-value bucket Bucket.
//
// A rule file is untrusted input: Parse bounds its size and its rules,
// refuses what YAML could make mean something else than it shows
// (anchors, aliases, tags, merge keys, several documents), and never
// panics. Merging with the defaults and judging what weakens them are
// package guard's (Merge, Weakenings).
package rulefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/manifest"
)

// MaxSize is the largest rule file Parse reads. guard.MaxRules rules
// written out at length take a few kilobytes.
const MaxSize = 64 << 10

// maxErrors caps the problems one Parse reports.
const maxErrors = 50

// Error is one problem of a rule file ("guard.yaml:7:
// rules[1].when.threshold: must be 0 to 1000000"), and Errors every one
// found in a file, in file order: the manifest's types, so the two files
// report problems alike (and both as aegis.ErrInvalidArgument, a 400).
type (
	Error  = manifest.Error
	Errors = manifest.Errors
)

// Parse decodes and validates the rule file data; name is the file's
// name in error messages. The rules are in the file's order, each valid
// (guard.Rule.Validate), their names distinct. On failure the error is
// an Errors naming every problem's line and field.
func Parse(name string, data []byte) ([]guard.Rule, error) {
	if len(data) > MaxSize {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("a rule file is at most %d bytes", MaxSize)}}
	}
	root, errs := parseNode(name, data)
	if errs != nil {
		return nil, clampLines(errs, data)
	}
	d := &decoder{file: name, lines: map[string]int{}}
	rules := d.root(root)
	if len(d.errs) > 0 {
		d.errs = clampLines(d.errs, data)
		slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
		if n := len(d.errs) - maxErrors; n > 0 {
			d.errs = append(d.errs[:maxErrors], &Error{File: name, Msg: fmt.Sprintf("%d more errors not shown", n)})
		}
		return nil, d.errs
	}
	return rules, nil
}

// clampLines keeps every error on a line the file has, as an editor
// counts them: yaml.v3 also breaks lines at a lone carriage return, and
// reports an unexpected end one line past the last.
func clampLines(errs Errors, data []byte) Errors {
	last := bytes.Count(data, []byte("\n")) + 1
	for _, e := range errs {
		e.Line = min(e.Line, last)
	}
	return errs
}

// yamlLine finds the line in yaml.v3's error text ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// parseNode parses exactly one YAML document and returns its root.
func parseNode(name string, data []byte) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Msg: "the file is empty: it lists its rules under rules:"}}
		}
		e := &Error{File: name, Msg: err.Error()}
		if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = e.Msg[len(m[0]):]
		}
		return nil, Errors{e}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := 0
		if err == nil {
			line = extra.Line
		}
		return nil, Errors{{File: name, Line: line, Msg: "a rule file is a single YAML document"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 ||
		doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].ShortTag() == "!!null" {
		return nil, Errors{{File: name, Line: doc.Line, Msg: "the file is empty: it lists its rules under rules:"}}
	}
	return doc.Content[0], nil
}
