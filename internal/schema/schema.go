// Package schema owns JSON Schema validation of what reaches a function:
// the body, query and path parameters of an HTTP request, the payload of an
// event and the document of an object event. It is the only package that
// imports the validator (github.com/santhosh-tekuri/jsonschema/v6).
//
// Schemas are compiled once, at deploy, from the files sent with the deploy
// and nothing else: the loader resolves only those files, so a $ref never
// reaches the network or the server's file system. Draft 2020-12 is the
// default draft; format assertions are on, content assertions off
// (docs/manifest.md, "Schemas").
//
// Input is hostile. A violation names the failing field and the keyword
// that failed, never the value (the validator's own messages quote values,
// so they are not used for instances); a panic inside the validator
// becomes an error; numbers outside float64's range are refused before the
// validator turns them into big rationals; a JSON text that parsers could
// read differently (duplicate member names, invalid UTF-8, lone surrogate
// escapes) is refused before it is decoded (strict.go).
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// Kinds of what a schema checks; they name the root of a violation's field
// path and label the violation counter.
const (
	KindBody        = "body"
	KindQuery       = "query"
	KindParams      = "params"
	KindContentType = "content_type"
	KindEvent       = "event"
	KindObject      = "object"
)

// MaxReported bounds the violations one error lists: enough to fix a
// request, too few to turn an error into a copy of it.
const MaxReported = 3

// maxNumberLen bounds the text of one JSON number. The validator compares
// numbers as big rationals; a short "1e999999" would cost it a million-digit
// power of ten, so such numbers are refused before it sees them.
const maxNumberLen = 128

// baseURL is the made-up location of the deploy's schema files: a relative
// $ref between them resolves as it would between files next to each other,
// and anything resolving elsewhere is refused by the loader.
const baseURL = "file:///"

// InvalidError is a schema file the deploy cannot use. Its message is
// written for the author (it names the file and what is wrong with it) and
// it matches aegis.ErrInvalidArgument without saying so in the text.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Is makes the error an aegis.ErrInvalidArgument.
func (e *InvalidError) Is(target error) bool { return target == aegis.ErrInvalidArgument }

func invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Schema is one compiled schema file, safe for concurrent use.
type Schema struct {
	name string
	s    *jsonschema.Schema
}

// Name is the schema's file name as the manifest writes it.
func (s *Schema) Name() string { return s.name }

// Compiler compiles the schema files of one deploy. Files not named by a
// Compile call, nor reached by a $ref from one, are never parsed.
type Compiler struct {
	files    map[string][]byte
	c        *jsonschema.Compiler
	loader   *loader
	compiled map[string]*Schema
}

// NewCompiler checks the files of a deploy against the limits (at most
// manifest.MaxSchemaFiles files, each at most manifest.MaxSchemaFileSize
// bytes, names as manifest.CheckSchemaFile accepts) and returns a compiler
// for them. Errors are aegis.ErrInvalidArgument and name the file.
func NewCompiler(files map[string][]byte) (*Compiler, error) {
	if len(files) > manifest.MaxSchemaFiles {
		return nil, invalidf("too many schema files: %d files, at most %d", len(files), manifest.MaxSchemaFiles)
	}
	for _, name := range sortedNames(files) {
		if err := manifest.CheckSchemaFile(name); err != nil {
			return nil, invalidf("schema file %q: %s", name, err)
		}
		if len(files[name]) > manifest.MaxSchemaFileSize {
			return nil, invalidf("schema file %s: larger than %d bytes", name, manifest.MaxSchemaFileSize)
		}
	}
	l := &loader{files: files, used: map[string]bool{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// Formats are asserted: a schema that says "format": "email" means it.
	// Only the validator's built-in formats exist; an unknown format name
	// asserts nothing, as the specification asks.
	c.AssertFormat()
	c.UseLoader(l)
	return &Compiler{files: files, c: c, loader: l, compiled: map[string]*Schema{}}, nil
}

// Compile compiles the named file and every file it reaches by $ref. A file
// that was not sent, is not JSON or is not a valid schema is
// aegis.ErrInvalidArgument, and the error names the file.
func (c *Compiler) Compile(name string) (s *Schema, err error) {
	if s, ok := c.compiled[name]; ok {
		return s, nil
	}
	if _, ok := c.files[name]; !ok {
		return nil, invalidf("schema file %s was not sent with the deploy", name)
	}
	// The validator walks documents it did not write; a bug of its own on
	// hostile input must refuse the deploy, not take down the admin API.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, invalidf("schema file %s: the validator failed on it", name)
		}
	}()
	c.loader.failed = nil
	compiled, err := c.c.Compile(fileURL(name))
	if err != nil {
		if c.loader.failed != nil {
			// The loader's own error names the file it refused.
			msg := c.loader.failed.Error()
			if !strings.Contains(msg, name) {
				msg = "schema file " + name + ": " + msg
			}
			return nil, &InvalidError{Msg: msg}
		}
		return nil, invalidf("schema file %s: %s", name, describeCompileError(err))
	}
	s = &Schema{name: name, s: compiled}
	c.compiled[name] = s
	return s, nil
}

// Used lists, sorted, the files the compiled schemas needed: the ones
// compiled and those reached by $ref. These are what a version must keep to
// compile the same schemas again.
func (c *Compiler) Used() []string {
	out := make([]string, 0, len(c.loader.used))
	for name := range c.loader.used {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Compile compiles every named file of files; a shorthand for tests and
// tools.
func Compile(files map[string][]byte, names ...string) (map[string]*Schema, error) {
	c, err := NewCompiler(files)
	if err != nil {
		return nil, err
	}
	out := map[string]*Schema{}
	for _, name := range names {
		s, err := c.Compile(name)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// loader serves the deploy's files to the validator and nothing else.
type loader struct {
	files  map[string][]byte
	used   map[string]bool
	failed error // why the last Load refused, naming the file
}

func (l *loader) Load(u string) (any, error) {
	name, ok := nameOf(u)
	if !ok {
		l.failed = fmt.Errorf("reference to %s, which is not a schema file of the deploy: schemas load nothing else (no network, no file system)", truncate(u, 200))
		return nil, l.failed
	}
	data, ok := l.files[name]
	if !ok {
		l.failed = fmt.Errorf("reference to schema file %s, which was not sent with the deploy", name)
		return nil, l.failed
	}
	doc, err := decodeJSON(data)
	var amb *ambiguity
	switch {
	case errors.As(err, &amb):
		// A schema read two ways is no schema: its author learns where.
		l.failed = fmt.Errorf("schema file %s: %w", name, amb)
		return nil, l.failed
	case err != nil:
		l.failed = fmt.Errorf("schema file %s is not valid JSON: %w", name, err)
		return nil, l.failed
	}
	if err := checkNumbers(doc); err != nil {
		l.failed = fmt.Errorf("schema file %s: %w", name, err)
		return nil, l.failed
	}
	l.used[name] = true
	return doc, nil
}

// fileURL is the location of a schema file under baseURL, each segment
// escaped so that "#" or "?" in a name cannot change what it refers to.
func fileURL(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return baseURL + strings.Join(segs, "/")
}

// nameOf maps a location back to a schema file name.
func nameOf(u string) (string, bool) {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "file" || p.Host != "" || p.RawQuery != "" || p.Opaque != "" {
		return "", false
	}
	name := strings.TrimPrefix(p.Path, "/")
	if manifest.CheckSchemaFile(name) != nil {
		return "", false
	}
	return name, true
}

// describeCompileError turns the validator's error into one line. Schemas
// are the deployer's own text, so quoting from them is fine; locations are
// written as file names rather than the made-up URLs.
func describeCompileError(err error) string {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var verr *jsonschema.ValidationError
		if errors.As(sve.Err, &verr) {
			leaves := leafErrors(verr, nil)
			msgs := make([]string, 0, MaxReported)
			for i, l := range leaves {
				if i == MaxReported {
					msgs = append(msgs, fmt.Sprintf("and %d more", len(leaves)-MaxReported))
					break
				}
				msgs = append(msgs, oneLine(l.Error()))
			}
			return "not a valid schema: " + strings.Join(msgs, "; ")
		}
	}
	return oneLine(strings.ReplaceAll(err.Error(), baseURL, ""))
}

func leafErrors(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leafErrors(c, out)
	}
	return out
}

func oneLine(s string) string {
	return truncate(strings.Join(strings.Fields(s), " "), 512)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// decodeJSON reads exactly one JSON value, numbers kept as json.Number
// (the validator needs their exact text). A value that encoding/json reads
// but another parser could read differently (a duplicate member name,
// invalid UTF-8, an invalid surrogate escape) is refused with an
// *ambiguity; anything else that is not one JSON value with another error.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errSyntax
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one value")
	}
	if err := checkUnambiguous(data); err != nil {
		return nil, err
	}
	return v, nil
}

// errNumber refuses a number the validator would have to turn into a huge
// big.Rat: longer than maxNumberLen or outside float64's range.
var errNumber = errors.New("number out of range")

// checkNumbers walks a decoded document and refuses numbers that are too
// long or beyond float64's range.
func checkNumbers(v any) error {
	_, err := findBadNumber(v, nil)
	return err
}

// findBadNumber returns the location of the first bad number.
func findBadNumber(v any, loc []string) ([]string, error) {
	switch v := v.(type) {
	case json.Number:
		if len(v) > maxNumberLen {
			return loc, errNumber
		}
		if _, err := strconv.ParseFloat(string(v), 64); err != nil {
			return loc, errNumber
		}
	case []any:
		for i, e := range v {
			if l, err := findBadNumber(e, append(loc, strconv.Itoa(i))); err != nil {
				return l, err
			}
		}
	case map[string]any:
		for _, k := range sortedNames(v) {
			if l, err := findBadNumber(v[k], append(loc, k)); err != nil {
				return l, err
			}
		}
	}
	return nil, nil
}
