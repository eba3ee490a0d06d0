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
	"strconv"

	"gopkg.in/yaml.v3"
)

// MaxSize is the largest manifest Parse accepts. Real manifests are a few
// kilobytes; the cap bounds the parser's work on hostile input.
const MaxSize = 1 << 20

// maxErrors caps the problems Parse reports.
const maxErrors = 100

// Load reads and parses the manifest at path. Errors name path as the file.
func Load(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so Parse can tell "too large" apart from
	// "exactly at the limit".
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a manifest. filename is used only in error
// messages. On failure the error is an Errors value holding every problem
// found, each with its line and field path; use errors.As to get at them.
// The returned manifest is normalized (HTTP methods upper-cased, egress
// hosts lower-cased, Function.Name set) but defaults are not applied; call
// WithDefaults for that.
func Parse(filename string, data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, Errors{{File: filename, Msg: fmt.Sprintf("manifest is larger than %d bytes", MaxSize)}}
	}
	root, err := parseNode(filename, data)
	if err != nil {
		return nil, err
	}
	d := newDecoder(filename)
	var m Manifest
	d.value(root, "", reflect.ValueOf(&m).Elem())
	if d.failed[""] {
		return nil, d.errs // not a mapping: nothing else to check
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
		return nil, v.errs
	}
	m.lowerHosts()
	return &m, nil
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
