package manifest

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// nodeUnmarshaler is implemented by Duration and ByteSize.
type nodeUnmarshaler interface {
	UnmarshalYAML(*yaml.Node) error
}

// shorthand is implemented by mappings that may also be written as one
// string (an HTTP trigger's schema: a file name is its body schema). The
// mapping form is still decoded field by field, strictly.
type shorthand interface {
	fromScalar(s string)
}

// decoder fills the manifest types from a yaml.Node tree instead of using
// yaml.Unmarshal, because only the node tree knows where each value was
// written: every problem can then name its line and field path, and the
// validator can look up lines for fields that decoded fine but are wrong.
type decoder struct {
	file   string
	errs   Errors
	lines  map[string]int  // field path -> line of its key (or item)
	failed map[string]bool // field paths that did not decode
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}, failed: map[string]bool{}}
}

// fail reports a value that could not be decoded. The path is remembered so
// the validator does not pile a second, misleading error on it (a timeout
// that failed to parse is zero, and zero would otherwise look valid or
// "missing").
func (d *decoder) fail(line int, path, format string, args ...any) {
	d.failed[path] = true
	d.report(line, path, format, args...)
}

// report records a problem that leaves the decoded value usable, such as an
// unknown field next to good ones.
func (d *decoder) report(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// standardTags are the tags the YAML core schema resolves on its own. Any
// other explicit tag (!!binary, !!merge, !custom) is refused because the
// value would mean something other than what it looks like.
var standardTags = map[string]bool{
	"!!str": true, "!!int": true, "!!bool": true, "!!float": true,
	"!!null": true, "!!map": true, "!!seq": true, "!!timestamp": true,
}

// value decodes n into v, which must be settable.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		// Aliases are refused outright rather than capped: a manifest is
		// short enough to write out, and an alias bomb then cannot exist.
		d.fail(n.Line, path, "YAML aliases are not supported")
		return
	}
	if !standardTags[n.ShortTag()] {
		d.fail(n.Line, path, "unsupported YAML tag %q", n.Tag)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value is the same as leaving the field out
	}
	if u, ok := v.Addr().Interface().(nodeUnmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			d.fail(n.Line, path, "%s", err.Error())
		}
		return
	}
	if sh, ok := v.Addr().Interface().(shorthand); ok && n.Kind == yaml.ScalarNode {
		sh.fromScalar(n.Value)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, path, elem.Elem())
		v.Set(elem)
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice:
		d.sequence(n, path, v)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			i, err := parseInt(s)
			if n.ShortTag() != "!!int" || err != nil {
				d.fail(n.Line, path, "expected an integer, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, path, "a number"); ok {
			f, err := strconv.ParseFloat(s, 64)
			tag := n.ShortTag()
			if (tag != "!!float" && tag != "!!int") || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(n.Line, path, "expected a number, got %q", s)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false"); ok {
			if n.ShortTag() != "!!bool" {
				d.fail(n.Line, path, "expected true or false, got %q", s)
				return
			}
			v.SetBool(strings.EqualFold(s, "true"))
		}
	default:
		// Only reachable if types.go gains a field of a new kind.
		panic(fmt.Sprintf("manifest: cannot decode into %s", v.Type()))
	}
}

// parseInt reads the integer forms YAML 1.2 allows: decimal, 0x, 0o and 0b.
// A leading zero is decimal, not octal as it would be in Go.
func parseInt(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if len(t) > 1 && t[0] == '0' && strings.ContainsRune("xXoObB", rune(t[1])) {
		return strconv.ParseInt(s, 0, 64)
	}
	return strconv.ParseInt(s, 10, 64)
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

// keys walks a mapping node, reporting duplicate and non-scalar keys, and
// calls fn for each usable key.
func (d *decoder) keys(n *yaml.Node, path, want string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected %s, got %s", want, kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.report(k.Line, path, "mapping keys must be plain names")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			// yaml.v3 only checks duplicates when decoding into Go values;
			// on a node tree the last key would silently win.
			d.report(k.Line, join(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	fields := yamlFields(v.Type())
	d.keys(n, path, "a mapping", func(key string, k, val *yaml.Node) {
		i, ok := fields[key]
		if !ok {
			d.report(k.Line, path, "unknown field %q", key)
			return
		}
		p := join(path, key)
		d.lines[p] = k.Line
		d.value(val, p, v.Field(i))
	})
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	m := reflect.MakeMap(v.Type())
	d.keys(n, path, "a mapping", func(key string, k, val *yaml.Node) {
		p := join(path, key)
		d.lines[p] = k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, p, elem)
		m.SetMapIndex(reflect.ValueOf(key), elem)
	})
	v.Set(m)
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, path, "expected a list, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		return // keep nil, so a JSON round trip (omitempty) gives the same value
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		d.value(item, p, s.Index(i))
	}
	v.Set(s)
}

// yamlFields maps yaml tag names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}
