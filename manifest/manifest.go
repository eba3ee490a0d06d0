package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxSize is the largest manifest Parse accepts. Real manifests are a few
// kilobytes; the cap bounds the parser's work on hostile input.
const MaxSize = 1 << 20

// maxSearch is the largest manifest whose YAML syntax errors problemLine
// looks for the line of.
const maxSearch = 256 << 10

// maxErrors caps the problems Parse reports.
const maxErrors = 100

// Load reads and parses the manifest at path. Errors name path as the file.
func Load(path string) (*Manifest, error) {
	m, _, err := LoadWithPositions(path)
	return m, err
}

// LoadWithPositions is Load that also returns where each field was
// written, for a caller whose own check of a value (a source directory, a
// schema file) should point at the manifest line that named it.
func LoadWithPositions(path string) (*Manifest, *Positions, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so parse can tell "too large" apart from
	// "exactly at the limit".
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("load manifest: %w", err)
	}
	return parse(path, data)
}

// ParseWithPositions is Parse that also returns where each field was
// written (LoadWithPositions).
func ParseWithPositions(filename string, data []byte) (*Manifest, *Positions, error) {
	return parse(filename, data)
}

// Positions records the line of every field of a parsed manifest.
type Positions struct {
	file  string
	lines map[string]int // field path -> line of its key (or list item)
}

// Line is the line field (a dotted path such as
// "functions.hello.source") was written on; a field left out is reported
// at its nearest written ancestor. Zero on a nil Positions.
func (p *Positions) Line(field string) int {
	if p == nil {
		return 0
	}
	return lineOf(p.lines, field)
}

// Errorf is a problem with field found after parsing, as an *Error naming
// the manifest's file and the field's line.
func (p *Positions) Errorf(field, format string, args ...any) *Error {
	e := &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
	if p != nil {
		e.File, e.Line = p.file, p.Line(field)
	}
	return e
}

// Parse decodes and validates a manifest. filename is used only in error
// messages. On failure the error is an Errors value holding every problem
// found, each with its line and field path; use errors.As to get at them.
// The returned manifest is normalized (HTTP methods upper-cased, egress
// hosts lower-cased, Function.Name set) but defaults are not applied; call
// WithDefaults for that.
func Parse(filename string, data []byte) (*Manifest, error) {
	m, _, err := parse(filename, data)
	return m, err
}

func parse(filename string, data []byte) (*Manifest, *Positions, error) {
	if len(data) > MaxSize {
		return nil, nil, Errors{{File: filename, Msg: fmt.Sprintf("manifest is larger than %d bytes", MaxSize)}}
	}
	root, err := parseNode(filename, data)
	if err != nil {
		return nil, nil, err
	}
	d := newDecoder(filename)
	var m Manifest
	d.value(root, "", reflect.ValueOf(&m).Elem())
	if d.failed[""] {
		return nil, nil, d.errs // not a mapping: nothing else to check
	}
	for name, fn := range m.Functions {
		if fn == nil {
			// "name:" with nothing after it; keep the entry so validation
			// reports what the function lacks.
			fn = &Function{}
			m.Functions[name] = fn
		}
		fn.Name = name
	}
	m.normalize()

	v := &validator{file: filename, lines: d.lines, failed: d.failed, errs: d.errs}
	v.manifest(&m)
	if len(v.errs) > 0 {
		slices.SortStableFunc(v.errs, func(a, b *Error) int { return a.Line - b.Line })
		if n := len(v.errs) - maxErrors; n > 0 {
			// The list goes back to the user in one response; a hostile
			// file with thousands of mistakes should not make it huge.
			v.errs = append(v.errs[:maxErrors], &Error{File: filename, Msg: fmt.Sprintf("%d more errors not shown", n)})
		}
		return nil, nil, v.errs
	}
	m.lowerHosts()
	return &m, &Positions{file: filename, lines: d.lines}, nil
}

// yamlLine finds the line in yaml.v3's error text ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// parseNode parses exactly one YAML document and returns its root node.
func parseNode(filename string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: filename, Msg: "manifest is empty"}}
		}
		e := &Error{File: filename, Msg: err.Error()}
		if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = e.Msg[len(m[0]):]
		}
		if e.Line > 0 {
			e.Line, e.Msg = problemLine(data, e.Line, e.Msg)
		}
		return nil, Errors{e}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := 0
		if err == nil {
			line = extra.Line
		}
		return nil, Errors{{File: filename, Line: line, Msg: "manifest must be a single YAML document"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, Errors{{File: filename, Msg: "manifest is empty"}}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, Errors{{File: filename, Line: root.Line, Msg: "manifest is empty"}}
	}
	return root, nil
}

// problemLine finds the line a YAML syntax error is on. yaml.v3 reports
// the line where the block the parser was in began (its "context"), so a
// key indented one space too few under a function is reported at
// "functions:", lines above it. The parser reads top to bottom and stops
// at the first problem, so the problem is on the last line of the
// shortest prefix of the document that fails with the same message; a
// binary search over line prefixes finds it in a few parses. A prefix cut
// inside a flow collection fails differently and so does not count.
//
// The search parses up to log2(lines) prefixes, so it is skipped above
// maxSearch: real manifests are a few kilobytes, and a maximal hostile
// one should not cost a second of parsing per attempt.
func problemLine(data []byte, reported int, msg string) (int, string) {
	if len(data) > maxSearch {
		return reported, msg
	}
	var ends []int // ends[i]: offset just past line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	if reported > len(ends) {
		return reported, msg
	}
	fails := func(lines int) bool {
		var doc yaml.Node
		err := yaml.NewDecoder(bytes.NewReader(data[:ends[lines-1]])).Decode(&doc)
		return err != nil && strings.HasSuffix(err.Error(), ": "+msg)
	}
	n := reported + sort.Search(len(ends)-reported+1, func(i int) bool { return fails(reported + i) })
	if n > len(ends) || n == reported {
		return reported, indentHint(data, ends, reported, msg)
	}
	return n, indentHint(data, ends, n, msg) + fmt.Sprintf(" (in the block that starts at line %d)", reported)
}

// indentHint adds what usually causes msg on line n: a tab, or an
// indentation that matches no enclosing block.
func indentHint(data []byte, ends []int, n int, msg string) string {
	start := 0
	if n > 1 {
		start = ends[n-2]
	}
	line := data[start:ends[n-1]]
	switch {
	case bytes.HasPrefix(bytes.TrimLeft(line, " "), []byte("\t")):
		return msg + "; YAML indents with spaces, not tabs"
	case strings.HasPrefix(msg, "did not find expected"):
		return msg + "; check the indentation of this line"
	}
	return msg
}

// normalize rewrites values that have one canonical spelling, so everything
// downstream (routing, the step-up comparison of grants) compares exact
// strings.
func (m *Manifest) normalize() {
	for _, fn := range m.Functions {
		for i := range fn.Triggers {
			if h := fn.Triggers[i].HTTP; h != nil {
				h.Method = toUpperASCII(h.Method)
			}
		}
	}
}

// lowerHosts writes egress hosts in lower case. It runs after validation,
// which reads hosts in any case, so an error names a host as it was written.
func (m *Manifest) lowerHosts() {
	for _, fn := range m.Functions {
		for i, h := range fn.Grants.Egress.Hosts {
			fn.Grants.Egress.Hosts[i] = toLowerASCII(h)
		}
	}
}

// Validate checks a manifest that did not come from Parse, such as one read
// back from JSON. Problems carry field paths but no file or line.
func (m *Manifest) Validate() error {
	v := &validator{}
	v.manifest(m)
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}

// FunctionNames returns the names of m's functions, sorted.
func (m *Manifest) FunctionNames() []string {
	names := make([]string, 0, len(m.Functions))
	for name := range m.Functions {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// toUpperASCII changes only ASCII letters: Unicode case mapping would turn
// "poſt" into "POST" and let a method that was never written pass as one.
func toUpperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}
