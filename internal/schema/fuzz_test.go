package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aegis-platform/aegis"
)

// FuzzCompile feeds arbitrary schema files, as a deploy could, to the
// compiler: it must never panic, reach anything but the files given, or
// give an error that does not name the file; whatever compiles must
// validate without panicking.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(orderSchema), []byte(itemSchema))
	f.Add([]byte(`{"$ref": "https://example.com/x.json"}`), []byte(`{}`))
	f.Add([]byte(`{"$ref": "common/item.json#/$defs/qty"}`), []byte(itemSchema))
	f.Add([]byte(`{"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}`), []byte(`true`))
	f.Add([]byte(`{"$id": "https://example.com/root", "$ref": "other"}`), []byte(`{}`))
	f.Add([]byte(`{"$dynamicRef": "#meta", "$dynamicAnchor": "meta"}`), []byte(`{}`))
	f.Add([]byte(`{"pattern": "(a+)+$", "format": "regex"}`), []byte(`false`))
	f.Add([]byte(`{"allOf": [{"$ref": "#"}]}`), []byte(`{}`))
	f.Add([]byte(`{"minimum": 1e308, "multipleOf": 0.0001}`), []byte(`{}`))
	f.Add([]byte(`{"$ref": "common/item.json"}`), []byte(`{"$ref": "../order.json"}`))
	f.Fuzz(func(t *testing.T, root, other []byte) {
		files := map[string][]byte{"schemas/order.json": root, "schemas/common/item.json": other}
		c, err := NewCompiler(files)
		if err != nil {
			if len(root) <= 256<<10 && len(other) <= 256<<10 {
				t.Fatalf("files within the limits refused: %v", err)
			}
			return
		}
		s, err := c.Compile("schemas/order.json")
		if err != nil {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Fatalf("error is not ErrInvalidArgument: %v", err)
			}
			if !strings.Contains(err.Error(), "schemas/") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error does not name the file on one line: %q", err)
			}
			return
		}
		for _, u := range c.Used() {
			if _, ok := files[u]; !ok {
				t.Fatalf("used a file that was not given: %s", u)
			}
		}
		for _, inst := range []string{`{"name":"fuzzSECRETvalue","items":[{"name":"fuzzSECRETvalue"}]}`, `"fuzzSECRETvalue"`, `[1,"fuzzSECRETvalue",null,true,{}]`, `1e3`} {
			if err := s.ValidateJSON(KindEvent, []byte(inst)); err != nil && strings.Contains(err.Error(), "fuzzSECRET") {
				t.Fatalf("message echoes the value: %v", err)
			}
		}
	})
}

// FuzzValidate feeds arbitrary bodies to a fixed schema: no panic, a
// bounded message, and no string value of the body in it unless the schema
// or a key carries the same text.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"name":"x","items":[{"name":"a","qty":2}]}`))
	f.Add([]byte(`{"name":"x","items":[{"name":"a"},{"name":4711}],"code":"SECRETvalue"}`))
	f.Add([]byte(`{"name":"x","items":[],"kind":"SECRETvalue","email":"SECRETvalue"}`))
	f.Add([]byte(`{"a\u0000b":1,"items":[]}`))
	f.Add([]byte(`[[[[[[[[[[]]]]]]]]]]`))
	f.Add([]byte(`{"count":1e999999}`))
	f.Add([]byte(`not json`))
	s := compileOrderF(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		err := s.ValidateJSON(KindBody, body)
		if err == nil {
			return
		}
		msg := err.Error()
		if len(msg) > 3*(maxPathLen+200) {
			t.Fatalf("message of %d bytes", len(msg))
		}
		var doc any
		if json.Unmarshal(body, &doc) != nil {
			return
		}
		var keys strings.Builder
		var values []string
		collect(doc, &keys, &values)
		for _, v := range values {
			if len(v) < 8 || strings.Contains(keys.String(), v) || strings.Contains(orderSchema+itemSchema, v) {
				continue
			}
			if strings.Contains(msg, v) {
				t.Fatalf("message echoes value %q: %s", v, msg)
			}
		}
	})
}

func compileOrderF(f *testing.F) *Schema {
	got, err := Compile(map[string][]byte{
		"schemas/order.json":       []byte(orderSchema),
		"schemas/common/item.json": []byte(itemSchema),
	}, "schemas/order.json")
	if err != nil {
		f.Fatal(err)
	}
	return got["schemas/order.json"]
}

// collect gathers every key (joined, so a value that is part of a key is
// found) and every string value of a document.
func collect(v any, keys *strings.Builder, values *[]string) {
	switch v := v.(type) {
	case string:
		*values = append(*values, v)
	case []any:
		for _, e := range v {
			collect(e, keys, values)
		}
	case map[string]any:
		for k, e := range v {
			keys.WriteString(k)
			keys.WriteByte(0)
			collect(e, keys, values)
		}
	}
}

// FuzzValidateJSON checks the refusal of ambiguous JSON against references
// written without jsontext: on a schema that accepts everything, a text is
// accepted exactly when it is one JSON value (encoding/json), valid UTF-8,
// without duplicate member names (a naive detector over encoding/json's
// tokens) and without lone surrogate escapes (a naive scanner), and what is
// accepted decodes as encoding/json decodes it. The seed corpus is in
// testdata/fuzz/FuzzValidateJSON.
func FuzzValidateJSON(f *testing.F) {
	got, err := Compile(map[string][]byte{"any.json": []byte(`true`)}, "any.json")
	if err != nil {
		f.Fatal(err)
	}
	s := got["any.json"]
	f.Fuzz(func(t *testing.T, data []byte) {
		err := s.ValidateJSON(KindEvent, data)
		valid := json.Valid(data)
		dup := valid && refHasDuplicate(data)
		lone := valid && refHasLoneSurrogate(data)
		badUTF8 := !utf8.Valid(data)
		var se *Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("not an *Error: %v", err)
		}
		switch {
		case err == nil:
			if !valid || badUTF8 || dup || lone {
				t.Fatalf("accepted: valid JSON %v, invalid UTF-8 %v, duplicate %v, lone surrogate %v", valid, badUTF8, dup, lone)
			}
			checkDecodesAsEncodingJSON(t, data)
		case errors.Is(err, ErrNotJSON):
			if valid {
				t.Fatalf("valid JSON refused as not JSON: %v", err)
			}
		case errors.Is(err, ErrViolation):
			if !valid {
				t.Fatalf("invalid JSON refused as a violation: %v", err)
			}
			checkViolation(t, se, dup, lone, badUTF8)
		default:
			t.Fatalf("unexpected cause: %v", err)
		}
		if err != nil && (strings.Contains(err.Error(), "\n") || len(err.Error()) > maxPathLen+200) {
			t.Fatalf("message not one bounded line: %q", err)
		}
	})
}

// checkViolation: on a schema that accepts everything, the only violations
// are ambiguities and out-of-range numbers, and each has its cause.
func checkViolation(t *testing.T, se *Error, dup, lone, badUTF8 bool) {
	t.Helper()
	if len(se.Violations) != 1 {
		t.Fatalf("violations: %v", se.Violations)
	}
	switch r := se.Violations[0].Reason; {
	case r == reasonDuplicate && dup, r == reasonSurrogate && lone, r == reasonUTF8 && badUTF8:
	case r == "number out of range" && !dup && !lone && !badUTF8:
	default:
		t.Fatalf("reason %q: duplicate %v, lone surrogate %v, invalid UTF-8 %v", r, dup, lone, badUTF8)
	}
	if !strings.HasPrefix(se.Violations[0].Field, KindEvent) {
		t.Fatalf("field %q", se.Violations[0].Field)
	}
}

func checkDecodesAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	got, err := decodeJSON(data)
	if err != nil {
		t.Fatalf("decodeJSON refused what ValidateJSON accepted: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want any
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("encoding/json refused: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %#v, encoding/json %#v", got, want)
	}
}

// refHasDuplicate is a naive duplicate detector: encoding/json's tokens,
// one set of names per object being read. In an object, tokens alternate
// name and value; a container value opens a frame of its own.
func refHasDuplicate(data []byte) bool {
	type frame struct {
		names map[string]bool // nil for an array
		n     int             // tokens read at this level
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number beyond float64 must not end the walk
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			top := stack[len(stack)-1]
			top.n++
			if top.n%2 == 1 {
				name, _ := tok.(string)
				if top.names[name] {
					return true
				}
				top.names[name] = true
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		}
	}
}

// refHasLoneSurrogate scans valid JSON for a \u escape of a surrogate that
// is not a high one directly followed by an escaped low one.
func refHasLoneSurrogate(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && data[i+1] != 'u':
			i++ // a one-character escape
		case c == '\\':
			r := hexRune(data[i+2 : i+6])
			i += 5
			if !utf16.IsSurrogate(r) {
				continue
			}
			if r >= 0xDC00 || i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
				return true
			}
			if low := hexRune(data[i+3 : i+7]); low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hexRune(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}
