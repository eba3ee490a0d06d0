package schema

import (
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// The causes an *Error unwraps to.
var (
	// ErrViolation: the value does not satisfy the schema.
	ErrViolation = errors.New("does not match schema")
	// ErrNotJSON: a body or payload with a schema is not one JSON value.
	ErrNotJSON = errors.New("not valid JSON")
	// ErrContentType: the request body's media type is not accepted.
	ErrContentType = errors.New("unsupported media type")
)

// Violation is one failed keyword: where and which, never the value.
type Violation struct {
	// Field is the path of the failing value: "body.items[2].name",
	// "query.limit", "params.id", "event.id". Keys that are not plain
	// identifiers are quoted and shortened.
	Field string
	// Reason is the keyword that failed and what it wants: "required",
	// "type: want string", "maxLength: want at most 20 characters".
	Reason string
}

func (v Violation) String() string { return v.Field + ": " + v.Reason }

// Error is a refusal by a schema or a content-type list. Its message is
// safe to show to the client that sent the request and to put in a dead
// letter: it names fields and keywords, never values.
type Error struct {
	// Kind is what failed: KindBody, KindQuery, KindParams,
	// KindContentType, KindEvent or KindObject.
	Kind string
	// Violations are the first MaxReported violations, sorted by field.
	Violations []Violation
	// Total counts every violation found, reported or not.
	Total int
	// Accepted lists the media types a content-type refusal accepts.
	Accepted []string

	cause error
}

func (e *Error) Unwrap() error { return e.cause }

// Status is the HTTP status of the refusal: 415 for a media type, 400
// otherwise.
func (e *Error) Status() int {
	if e.cause == ErrContentType {
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

// Error reads "request does not match schema: body.name: required",
// "event does not match schema: event.id: type: want integer",
// "body is not valid JSON" or "unsupported media type (accepted:
// application/json)".
func (e *Error) Error() string {
	switch e.cause {
	case ErrContentType:
		return "unsupported media type (accepted: " + strings.Join(e.Accepted, ", ") + ")"
	case ErrNotJSON:
		return subjectOf(e.Kind, true) + " is not valid JSON"
	}
	var b strings.Builder
	b.WriteString(subjectOf(e.Kind, false))
	b.WriteString(" does not match schema: ")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	if more := e.Total - len(e.Violations); more > 0 {
		fmt.Fprintf(&b, " (and %d more)", more)
	}
	return b.String()
}

// subjectOf names what a message is about. Request parts share "request":
// the field path already says which part failed.
func subjectOf(k string, part bool) string {
	switch k {
	case KindEvent:
		return "event"
	case KindObject:
		return "object event"
	case KindBody, KindQuery, KindParams:
		if part {
			return k
		}
	}
	return "request"
}

// ValidateJSON decodes data as one JSON value and validates it. kind
// (KindBody, KindEvent, KindObject) is the root of the field paths.
//
// A text with a duplicate member name, invalid UTF-8 or an invalid
// surrogate escape is a violation at the place it was found ("body.name:
// duplicate member name"), whatever the schema says: the function gets
// these bytes, and a parser other than ours could read in them a value the
// schema never saw.
func (s *Schema) ValidateJSON(kind string, data []byte) error {
	v, err := decodeJSON(data)
	var amb *ambiguity
	switch {
	case errors.As(err, &amb):
		return newError(kind, nil, []Violation{{Field: amb.field(kind), Reason: amb.reason}})
	case err != nil:
		return &Error{Kind: kind, cause: ErrNotJSON}
	}
	return s.Validate(kind, v)
}

// Validate validates a decoded value (strings, json.Number, bool, nil,
// []any and map[string]any). kind is the root of the field paths.
func (s *Schema) Validate(kind string, v any) (err error) {
	if loc, err := findBadNumber(v, nil); err != nil {
		return newError(kind, v, []Violation{{Field: fieldPath(kind, v, loc), Reason: "number out of range"}})
	}
	// A panic in the validator fails closed: the value is refused.
	defer func() {
		if r := recover(); r != nil {
			err = newError(kind, v, []Violation{{Field: kind, Reason: "could not be validated"}})
		}
	}()
	verr := s.s.Validate(v)
	if verr == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(verr, &ve) {
		return newError(kind, v, []Violation{{Field: kind, Reason: "could not be validated"}})
	}
	return newError(kind, v, violations(kind, v, ve, nil))
}

func newError(kind string, v any, all []Violation) *Error {
	slices.SortFunc(all, func(a, b Violation) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	all = slices.Compact(all)
	if len(all) == 0 {
		all = []Violation{{Field: kind, Reason: "invalid"}}
	}
	e := &Error{Kind: kind, Total: len(all), cause: ErrViolation}
	e.Violations = all[:min(len(all), MaxReported)]
	return e
}

// violations flattens the validator's error tree into violations. Errors
// that only group others (the root, $ref, allOf) are looked through; the
// alternatives of anyOf and oneOf are not, since which alternative was
// meant is unknowable, so those report themselves.
func violations(root string, inst any, e *jsonschema.ValidationError, out []Violation) []Violation {
	// under names a property of the failing object: a missing or extra
	// one is reported at its own path.
	under := func(names []string, reason string) []Violation {
		for _, n := range names {
			out = append(out, Violation{Field: fieldPath(root, inst, append(slices.Clone(e.InstanceLocation), n)), Reason: reason})
		}
		return out
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		if len(e.Causes) == 0 {
			return append(out, Violation{Field: fieldPath(root, inst, e.InstanceLocation), Reason: "invalid"})
		}
		for _, c := range e.Causes {
			out = violations(root, inst, c, out)
		}
		return out
	case *kind.Required:
		return under(k.Missing, "required")
	case *kind.DependentRequired:
		return under(k.Missing, "required when "+keyName(k.Prop)+" is present")
	case *kind.Dependency:
		return under(k.Missing, "required when "+keyName(k.Prop)+" is present")
	case *kind.AdditionalProperties:
		return under(k.Properties, "not allowed")
	case *kind.PropertyNames:
		return under([]string{k.Property}, "propertyNames: name not allowed")
	}
	return append(out, Violation{Field: fieldPath(root, inst, e.InstanceLocation), Reason: reason(e.ErrorKind)})
}

// reason describes a failed keyword from the schema's side only: what it
// wants, never what it got (several kinds carry the value; none is used).
func reason(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return "type: want " + strings.Join(k.Want, " or ")
	case *kind.Enum:
		return "enum: not an allowed value"
	case *kind.Const:
		return "const: not the required value"
	case *kind.Format:
		return "format: want " + truncate(k.Want, 64)
	case *kind.Pattern:
		return "pattern: does not match " + truncate(k.Want, 64)
	case *kind.MinLength:
		return fmt.Sprintf("minLength: want at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("maxLength: want at most %d characters", k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("minItems: want at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("maxItems: want at most %d items", k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("minProperties: want at least %d properties", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("maxProperties: want at most %d properties", k.Want)
	case *kind.Minimum:
		return "minimum: want at least " + ratString(k.Want)
	case *kind.Maximum:
		return "maximum: want at most " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "exclusiveMinimum: want more than " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "exclusiveMaximum: want less than " + ratString(k.Want)
	case *kind.MultipleOf:
		return "multipleOf: want a multiple of " + ratString(k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("uniqueItems: items %d and %d are equal", k.Duplicates[0], k.Duplicates[1])
	case *kind.Contains:
		return "contains: no item matches"
	case *kind.MinContains:
		return fmt.Sprintf("minContains: want at least %d matching items", k.Want)
	case *kind.MaxContains:
		return fmt.Sprintf("maxContains: want at most %d matching items", k.Want)
	case *kind.AdditionalItems:
		return "additionalItems: not allowed"
	case *kind.FalseSchema:
		return "not allowed"
	case *kind.Not:
		return "not: must not match"
	case *kind.AnyOf:
		return "anyOf: matches no alternative"
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			return "oneOf: matches no alternative"
		}
		return "oneOf: matches more than one alternative"
	case *kind.RefCycle:
		return "schema reference cycle"
	}
	if p := k.KeywordPath(); len(p) > 0 {
		return truncate(p[0], 64) + ": invalid"
	}
	return "invalid"
}

// ratString writes a schema's bound as a decimal. The bound comes from the
// schema, so it is safe to show.
func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return truncate(r.Num().String(), 64)
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// maxPathLen bounds a rendered field path; a deeply nested document would
// otherwise make an error as long as itself.
const maxPathLen = 200

// fieldPath renders an instance location under root: ".key" for object
// members, "[i]" for array items. The instance is walked alongside, so an
// index is told from a key that looks like one.
func fieldPath(root string, inst any, loc []string) string {
	var b strings.Builder
	b.WriteString(root)
	cur := inst
	for _, tok := range loc {
		if b.Len() > maxPathLen {
			b.WriteString("…")
			break
		}
		switch c := cur.(type) {
		case []any:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				b.WriteString("[" + tok + "]")
				cur = c[i]
				continue
			}
			cur = nil
		case map[string]any:
			cur = c[tok]
		default:
			cur = nil
		}
		writeKey(&b, tok)
	}
	return b.String()
}

// writeKey writes an object key: ".name" for identifier-like keys, else
// a quoted, shortened ["…"]. Keys come from the instance; quoting keeps
// control characters and path syntax out of messages and logs.
func writeKey(b *strings.Builder, k string) {
	if isIdent(k) {
		b.WriteByte('.')
		b.WriteString(k)
		return
	}
	b.WriteByte('[')
	b.WriteString(strconv.QuoteToASCII(truncate(k, 32)))
	b.WriteByte(']')
}

// keyName is a property name from a schema, written like a path key.
func keyName(k string) string {
	if isIdent(k) {
		return k
	}
	return strconv.QuoteToASCII(truncate(k, 32))
}

func isIdent(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '$':
		case i > 0 && ('0' <= c && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}
