package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
