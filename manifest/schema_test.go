package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const schemaFile = "../docs/manifest.schema.json"

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s is not valid JSON: %v", schemaFile, err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", s["$schema"])
	}
	return s
}

// resolve follows a local "$ref" ("#/$defs/x") to its target.
func resolve(t *testing.T, root, s map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			t.Fatalf("unsupported $ref %q", ref)
		}
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Fatalf("$ref %q points nowhere", ref)
		}
		s = def
	}
}

// TestSchemaMatchesTypes walks the Go types and the JSON Schema side by side:
// each struct must be an object schema listing exactly its yaml field names
// with additionalProperties false. A field added to types.go without the
// schema (or the other way round) fails here.
func TestSchemaMatchesTypes(t *testing.T) {
	root := loadSchema(t)
	var walk func(path string, typ reflect.Type, s map[string]any)
	walk = func(path string, typ reflect.Type, s map[string]any) {
		s = resolve(t, root, s)
		switch typ {
		case reflect.TypeFor[Duration](), reflect.TypeFor[ByteSize](), reflect.TypeFor[Rate]():
			return
		}
		switch typ.Kind() {
		case reflect.Pointer:
			walk(path, typ.Elem(), s)
		case reflect.Slice:
			items, ok := s["items"].(map[string]any)
			if !ok {
				t.Errorf("%s: schema has no items", path)
				return
			}
			walk(path+"[]", typ.Elem(), items)
		case reflect.Map:
			elem, ok := s["additionalProperties"].(map[string]any)
			if !ok {
				t.Errorf("%s: schema for a map needs additionalProperties to be a schema", path)
				return
			}
			walk(path+".*", typ.Elem(), elem)
		case reflect.Struct:
			// A struct with a shorthand (HTTPSchema) is anyOf a string
			// and its object schema; the object one must match the type.
			if alts, ok := s["anyOf"].([]any); ok {
				for _, alt := range alts {
					if a, ok := alt.(map[string]any); ok {
						if r := resolve(t, root, a); r["type"] == "object" {
							s = r
						}
					}
				}
			}
			if s["additionalProperties"] != false {
				t.Errorf("%s: additionalProperties must be false", path)
			}
			props, _ := s["properties"].(map[string]any)
			fields := yamlFields(typ)
			for name := range fields {
				if _, ok := props[name]; !ok {
					t.Errorf("%s: field %q is missing from the schema", path, name)
				}
			}
			for name := range props {
				if _, ok := fields[name]; !ok {
					t.Errorf("%s: schema property %q is not a field of %s", path, name, typ)
				}
			}
			for name, i := range fields {
				if p, ok := props[name].(map[string]any); ok {
					walk(join(path, name), typ.Field(i).Type, p)
				}
			}
		}
	}
	walk("", reflect.TypeFor[Manifest](), root)
}

// TestSchemaAcceptsGoodManifests checks the schema against every manifest
// Parse accepts in testdata/good, so the schema cannot become stricter
// than the parser without a test failing.
func TestSchemaAcceptsGoodManifests(t *testing.T) {
	root := loadSchema(t)
	files, _ := filepath.Glob("testdata/good/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, problem := range checkSchema(root, root, doc, "") {
			t.Errorf("%s: %s", file, problem)
		}
	}
}

// TestSchemaRejects spot-checks that the small validator below is not
// vacuous.
func TestSchemaRejects(t *testing.T) {
	root := loadSchema(t)
	for _, src := range []string{
		"app: x\nfunctions: {f: {source: a, scheam: 1}}\n",
		"app: X\nfunctions: {f: {source: a}}\n",
		"app: x\nfunctions: {f: {source: a, triggers: [{}]}}\n",
		"app: x\nfunctions: {f: {source: a, limits: {memory: 1.5GiB}}}\n",
		"app: x\nfunctions: {f: {source: a, limits: {timeout: 5}}}\n",
	} {
		var doc any
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		if len(checkSchema(root, root, doc, "")) == 0 {
			t.Errorf("schema accepts %q", src)
		}
	}
}

// checkSchema implements the part of JSON Schema 2020-12 that
// docs/manifest.schema.json uses. It returns the problems found.
func checkSchema(root, s map[string]any, v any, path string) []string {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			break
		}
		s = root["$defs"].(map[string]any)[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if typ, ok := s["type"].(string); ok && !hasJSONType(v, typ) {
		fail("want %s, got %T", typ, v)
		return errs
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, any(fmt.Sprint(v))) {
		fail("%v is not one of %v", v, enum)
	}
	if c, ok := s["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		fail("want %v", c)
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		matched := false
		for _, sub := range anyOf {
			if len(checkSchema(root, sub.(map[string]any), v, path)) == 0 {
				matched = true
			}
		}
		if !matched {
			fail("%v matches none of anyOf", v)
		}
	}
	switch v := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
		if n, ok := s["minLength"].(float64); ok && len(v) < int(n) {
			fail("%q is too short", v)
		}
		if n, ok := s["maxLength"].(float64); ok && len(v) > int(n) {
			fail("%q is too long", v)
		}
	case int:
		if n, ok := s["minimum"].(float64); ok && float64(v) < n {
			fail("%d < %v", v, n)
		}
		if n, ok := s["maximum"].(float64); ok && float64(v) > n {
			fail("%d > %v", v, n)
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, item := range v {
				errs = append(errs, checkSchema(root, items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case map[string]any:
		if n, ok := s["minProperties"].(float64); ok && len(v) < int(n) {
			fail("needs at least %v properties", n)
		}
		if n, ok := s["maxProperties"].(float64); ok && len(v) > int(n) {
			fail("allows at most %v properties", n)
		}
		required, _ := s["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				fail("missing %v", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range v {
			if names, ok := s["propertyNames"].(map[string]any); ok {
				errs = append(errs, checkSchema(root, names, k, join(path, k))...)
			}
			switch extra := s["additionalProperties"].(type) {
			case map[string]any:
				if _, ok := props[k]; !ok {
					errs = append(errs, checkSchema(root, extra, val, join(path, k))...)
					continue
				}
			case bool:
				if _, ok := props[k]; !ok && !extra {
					fail("unknown property %q", k)
					continue
				}
			}
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, checkSchema(root, p, val, join(path, k))...)
			}
		}
	}
	return errs
}

func hasJSONType(v any, typ string) bool {
	switch v.(type) {
	case string:
		return typ == "string"
	case int:
		return typ == "integer" || typ == "number"
	case float64:
		return typ == "number"
	case bool:
		return typ == "boolean"
	case []any:
		return typ == "array"
	case map[string]any:
		return typ == "object"
	}
	return false
}
