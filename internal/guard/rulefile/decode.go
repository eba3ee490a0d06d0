package rulefile

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/internal/guard"
)

// decoder walks the node tree of a rule file, field by field, so that
// every problem names its line and field path (as the manifest's decoder
// does; this schema is small enough to walk by hand).
type decoder struct {
	file  string
	errs  Errors
	lines map[string]int // field path -> line of its key (or list item)
}

func (d *decoder) errorf(line int, path, format string, a ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, a...)})
}

// The fields of each mapping, in the order docs/guard.md lists them.
var (
	fileFields   = []string{"rules"}
	ruleFields   = []string{"name", "disabled", "when", "then"}
	whenFields   = []string{"signal", "group_by", "threshold", "window", "baseline", "measure", "learning"}
	actionFields = []string{"action", "duration"}
)

// The measures of when.measure.
const (
	measureCount     = "count"
	measureGBSeconds = "gb_seconds"
)

// standardTags are the tags YAML's core schema resolves on its own; any
// other (!!binary, !custom) would make a value mean something else than
// it shows.
var standardTags = map[string]bool{
	"!!str": true, "!!int": true, "!!bool": true, "!!float": true,
	"!!null": true, "!!map": true, "!!seq": true,
}

// plain reports whether n may be read at all: no alias, anchor or
// unusual tag. An anchor is refused as well as an alias because a rule
// file is short enough to write out, and a reader should see every rule
// where it applies.
func (d *decoder) plain(n *yaml.Node, path string) bool {
	switch {
	case n.Kind == yaml.AliasNode:
		d.errorf(n.Line, path, "YAML aliases are not supported")
	case n.Anchor != "":
		d.errorf(n.Line, path, "YAML anchors are not supported")
	case !standardTags[n.ShortTag()]:
		d.errorf(n.Line, path, "unsupported YAML tag %q", n.Tag)
	default:
		return true
	}
	return false
}

// null reports whether n is an empty value, which counts as leaving the
// field out.
func null(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// fields walks the mapping n, reporting duplicate, unknown and unusual
// keys, and calls fn for each known field with a value.
func (d *decoder) fields(n *yaml.Node, path string, known []string, fn func(key string, v *yaml.Node, p string)) bool {
	if !d.plain(n, path) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", kindName(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Anchor != "" || k.ShortTag() == "!!merge" || !standardTags[k.ShortTag()] {
			d.errorf(k.Line, path, "mapping keys must be plain names")
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, p, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if !slices.Contains(known, k.Value) {
			d.errorf(k.Line, path, "unknown field %s (fields: %s)", quote(k.Value), strings.Join(known, ", "))
			continue
		}
		d.lines[p] = k.Line
		if !d.plain(v, p) || null(v) {
			continue
		}
		fn(k.Value, v, p)
	}
	return true
}

// root decodes the root mapping.
func (d *decoder) root(root *yaml.Node) []guard.Rule {
	var rules []guard.Rule
	found := false
	d.fields(root, "", fileFields, func(_ string, v *yaml.Node, p string) {
		found = true
		rules = d.rules(v, p)
	})
	if !found && len(d.errs) == 0 {
		d.errorf(root.Line, "rules", "missing: the file lists its rules under rules:")
	}
	return rules
}

func (d *decoder) rules(n *yaml.Node, path string) []guard.Rule {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a list of rules, got %s", kindName(n))
		return nil
	}
	if len(n.Content) > guard.MaxRules {
		d.errorf(n.Line, path, "%d rules, at most %d", len(n.Content), guard.MaxRules)
		return nil
	}
	var rules []guard.Rule
	names := map[string]int{} // rule name -> line of its name
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		before := len(d.errs)
		r, named := d.rule(item, p)
		if len(d.errs) > before {
			continue // a rule that did not decode is not validated as well
		}
		if !named {
			d.errorf(item.Line, p+".name", "missing: every rule has a name (a default's name replaces that default)")
			continue
		}
		if first, dup := names[r.Name]; dup {
			d.errorf(d.lines[p+".name"], p+".name", "rule %q is named twice (first at line %d)", r.Name, first)
			continue
		}
		names[r.Name] = d.lines[p+".name"]
		if err := r.Validate(); err != nil {
			d.invalid(p, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules
}

// invalid reports a rule that failed guard.Rule.Validate at the line of
// the field it names, or of the nearest field written above it.
func (d *decoder) invalid(path string, err error) {
	var fe *guard.FieldError
	if !errors.As(err, &fe) {
		d.errorf(d.lines[path], path, "%s", err.Error())
		return
	}
	field := path + "." + fe.Field
	d.errorf(d.lineOf(field), field, "%s", fe.Msg)
}

// lineOf is the line field was written on; a field left out is at its
// nearest written ancestor ("rules[0].then[1].duration" at "then[1]").
func (d *decoder) lineOf(field string) int {
	for {
		if l, ok := d.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i <= 0 {
			return 0
		}
		field = field[:i]
	}
}

// rule decodes one rule; named says whether it had a name field.
func (d *decoder) rule(n *yaml.Node, path string) (r guard.Rule, named bool) {
	d.fields(n, path, ruleFields, func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			r.Name, named = d.str(v, p)
		case "disabled":
			r.Disabled = d.boolean(v, p)
		case "when":
			d.when(v, p, &r)
		case "then":
			r.Then = d.then(v, p)
		}
	})
	return r, named
}

func (d *decoder) when(n *yaml.Node, path string, r *guard.Rule) {
	d.fields(n, path, whenFields, func(key string, v *yaml.Node, p string) {
		switch key {
		case "signal":
			r.Signals = d.signals(v, p)
		case "group_by":
			if s, ok := d.str(v, p); ok {
				r.GroupBy = guard.GroupBy(s)
			}
		case "threshold":
			r.Threshold = d.integer(v, p)
		case "window":
			r.Window = d.duration(v, p)
		case "baseline":
			r.Baseline = d.number(v, p)
		case "measure":
			s, ok := d.str(v, p)
			switch {
			case !ok:
			case s == measureGBSeconds:
				r.GBSeconds = true
			case s != measureCount:
				d.errorf(v.Line, p, "%s is not count or gb_seconds", quote(s))
			}
		case "learning":
			r.Learning = d.duration(v, p)
		}
	})
}

// signals reads one signal's name or a list of them.
func (d *decoder) signals(n *yaml.Node, path string) []guard.Signal {
	one := func(n *yaml.Node, p string) (guard.Signal, bool) {
		name, ok := d.str(n, p)
		if !ok {
			return 0, false
		}
		s, ok := guard.ParseSignal(name)
		if !ok {
			d.errorf(n.Line, p, "unknown signal %s (one of %s)", quote(name), strings.Join(guard.SignalNames(), ", "))
		}
		return s, ok
	}
	if n.Kind == yaml.ScalarNode {
		if s, ok := one(n, path); ok {
			return []guard.Signal{s}
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a signal's name or a list of them, got %s", kindName(n))
		return nil
	}
	var out []guard.Signal
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		if !d.plain(item, p) {
			continue
		}
		s, ok := one(item, p)
		switch {
		case !ok:
		case slices.Contains(out, s):
			d.errorf(item.Line, p, "%s named twice", s)
		default:
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) then(n *yaml.Node, path string) []guard.Action {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a list of actions, got %s", kindName(n))
		return nil
	}
	var out []guard.Action
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		var a guard.Action
		var named, timed bool
		d.fields(item, p, actionFields, func(key string, v *yaml.Node, fp string) {
			switch key {
			case "action":
				var s string
				s, named = d.str(v, fp)
				a.Kind = guard.ActionKind(s)
			case "duration":
				a.Duration, timed = d.duration(v, fp), true
			}
		})
		switch {
		case item.Kind != yaml.MappingNode:
		case !named:
			d.errorf(item.Line, p+".action", "missing: one of %s", actionList())
		case !timed && a.Kind == guard.ActAlert:
			a.Duration = guard.DefaultIncident
		case !timed && slices.Contains(guard.ActionKinds(), a.Kind):
			d.errorf(item.Line, p+".duration", "missing: how long %s lasts, such as 15m", a.Kind)
		}
		out = append(out, a)
	}
	return out
}

func actionList() string {
	names := make([]string, 0, len(guard.ActionKinds()))
	for _, k := range guard.ActionKinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.errorf(n.Line, path, "expected a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.errorf(n.Line, path, "expected true or false, got %s", kindName(n))
		return false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.errorf(n.Line, path, "expected true or false, got %s", kindName(n))
	}
	return b
}

func (d *decoder) integer(n *yaml.Node, path string) int {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errorf(n.Line, path, "expected a whole number, got %s", kindName(n))
		return 0
	}
	var i int64
	if err := n.Decode(&i); err != nil || i < math.MinInt32 || i > math.MaxInt32 {
		d.errorf(n.Line, path, "expected a whole number from 0 to %d, got %s", guard.MaxThreshold, kindName(n))
		return 0
	}
	return int(i)
}

func (d *decoder) number(n *yaml.Node, path string) float64 {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" {
		d.errorf(n.Line, path, "expected a number, got %s", kindName(n))
		return 0
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorf(n.Line, path, "expected a number, got %s", kindName(n))
		return 0
	}
	return f
}

// duration reads a Go duration ("90s", "15m", "1h"). A bare number
// other than 0 is refused: seconds or minutes, the reader would guess.
func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || tag != "!!str" && tag != "!!int" {
		d.errorf(n.Line, path, "expected a duration such as 15m, got %s", kindName(n))
		return 0
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		d.errorf(n.Line, path, "invalid duration %s: a Go duration such as 90s, 15m or 1h", quote(n.Value))
		return 0
	}
	return v
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
		return quote(n.Value)
	}
	return "nothing"
}

// quote quotes what the file said for a message, cut at 40 bytes: an
// error need not echo a hostile file whole.
func quote(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "…"
	}
	return strconv.Quote(s)
}
