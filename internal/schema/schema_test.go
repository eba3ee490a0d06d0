package schema

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

const orderSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["name", "items"],
  "properties": {
    "name":  {"type": "string", "maxLength": 20},
    "email": {"type": "string", "format": "email"},
    "code":  {"type": "string", "pattern": "^[a-z]+$"},
    "count": {"type": "integer", "minimum": 1, "maximum": 10},
    "kind":  {"enum": ["a", "b"]},
    "items": {"type": "array", "items": {"$ref": "common/item.json"}}
  },
  "additionalProperties": false
}`

const itemSchema = `{
  "type": "object",
  "required": ["name"],
  "properties": {"name": {"type": "string"}, "qty": {"$ref": "#/$defs/qty"}},
  "$defs": {"qty": {"type": "integer", "exclusiveMinimum": 0}}
}`

func compileOrder(t *testing.T) *Schema {
	t.Helper()
	got, err := Compile(map[string][]byte{
		"schemas/order.json":       []byte(orderSchema),
		"schemas/common/item.json": []byte(itemSchema),
	}, "schemas/order.json")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return got["schemas/order.json"]
}

func TestValidateNamesFieldAndKeywordNeverTheValue(t *testing.T) {
	s := compileOrder(t)
	tests := []struct {
		name, body string
		want       string // the whole message; "" = valid
	}{
		{"valid", `{"name":"x","items":[{"name":"a","qty":2}]}`, ""},
		{"missing required", `{"items":[]}`, "request does not match schema: body.name: required"},
		{"wrong type nested in an array", `{"name":"x","items":[{"name":"a"},{"name":"b"},{"name":4711}]}`,
			"request does not match schema: body.items[2].name: type: want string"},
		{"required nested in an array", `{"name":"x","items":[{"name":"a"},{"qty":1}]}`,
			"request does not match schema: body.items[1].name: required"},
		{"$defs through a $ref to another file", `{"name":"x","items":[{"name":"a","qty":0}]}`,
			"request does not match schema: body.items[0].qty: exclusiveMinimum: want more than 0"},
		{"additional property", `{"name":"x","items":[],"secret_field":1}`,
			"request does not match schema: body.secret_field: not allowed"},
		{"odd key is quoted", `{"name":"x","items":[],"a.b\n":1}`,
			`request does not match schema: body["a.b\n"]: not allowed`},
		{"several violations, sorted", `{"name":5,"count":0}`,
			"request does not match schema: body.count: minimum: want at least 1; body.items: required; body.name: type: want string"},
		{"more than reported", `{"name":5,"count":0,"kind":"c","code":"X"}`,
			"request does not match schema: body.code: pattern: does not match ^[a-z]+$; body.count: minimum: want at least 1; body.items: required (and 2 more)"},
		{"not an object", `[1,2]`, "request does not match schema: body: type: want object"},
		{"not JSON", `{"name":`, "body is not valid JSON"},
		{"two values", `{} {}`, "body is not valid JSON"},
		{"huge exponent", `{"name":"x","items":[],"count":1e999999}`, "request does not match schema: body.count: number out of range"},
		{"long number", `{"name":"x","items":[],"count":` + strings.Repeat("1", 200) + `}`, "request does not match schema: body.count: number out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ValidateJSON(KindBody, []byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid body refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid body accepted")
			}
			if err.Error() != tt.want {
				t.Errorf("message\n got: %s\nwant: %s", err, tt.want)
			}
			var se *Error
			if !errors.As(err, &se) || se.Status() != http.StatusBadRequest || se.Kind != KindBody {
				t.Errorf("error %#v: want a body *Error with status 400", err)
			}
		})
	}
}

// The validator's own messages quote the failing value (pattern, enum,
// const, format, minimum); ours must not, whatever keyword fails.
func TestMessagesNeverEchoTheValue(t *testing.T) {
	s := compileOrder(t)
	const secret = "hunter2SECRET"
	for _, body := range []string{
		`{"name":"x","items":[],"code":"` + secret + `"}`,
		`{"name":"x","items":[],"email":"` + secret + `"}`,
		`{"name":"x","items":[],"kind":"` + secret + `"}`,
		`{"name":"` + secret + strings.Repeat("x", 30) + `","items":[]}`,
		`{"name":"x","items":[{"name":"a","qty":"` + secret + `"}]}`,
		`{"name":"x","items":["` + secret + `"]}`,
		`"` + secret + `"`,
	} {
		err := s.ValidateJSON(KindBody, []byte(body))
		if err == nil {
			t.Fatalf("%s: accepted", body)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("message echoes the value: %s", err)
		}
	}
	// Numbers too: the minimum's bound is shown, the value is not.
	err := s.ValidateJSON(KindBody, []byte(`{"name":"x","items":[],"count":987654}`))
	if err == nil || strings.Contains(err.Error(), "987654") {
		t.Errorf("number echoed or accepted: %v", err)
	}
}

func TestCompileRefusals(t *testing.T) {
	big := `{"description":"` + strings.Repeat("x", manifest.MaxSchemaFileSize) + `"}`
	tooMany := map[string][]byte{}
	for i := 0; i <= manifest.MaxSchemaFiles; i++ {
		tooMany["s"+strings.Repeat("x", i)+".json"] = []byte(`{}`)
	}
	tests := []struct {
		name  string
		files map[string][]byte
		root  string
		want  []string // substrings of the error
	}{
		{"oversize file", map[string][]byte{"big.json": []byte(big)}, "big.json", []string{"big.json", "larger than"}},
		{"too many files", tooMany, "s.json", []string{"65 files", "at most 64"}},
		{"bad JSON", map[string][]byte{"bad.json": []byte(`{"type": "object",`)}, "bad.json", []string{"bad.json", "not valid JSON"}},
		{"not a schema", map[string][]byte{"s.json": []byte(`{"type": 5}`)}, "s.json", []string{"s.json", "not a valid schema", "/type"}},
		{"bad regex", map[string][]byte{"s.json": []byte(`{"pattern": "(?<=a)b"}`)}, "s.json", []string{"s.json"}},
		{"missing file", map[string][]byte{"a.json": []byte(`{}`)}, "b.json", []string{"b.json", "not sent with the deploy"}},
		{"$ref to a network URL", map[string][]byte{"s.json": []byte(`{"$ref": "https://example.com/evil.json"}`)}, "s.json",
			[]string{"s.json", "https://example.com/evil.json", "no network"}},
		{"$ref to a host file", map[string][]byte{"s.json": []byte(`{"$ref": "file:///etc/passwd"}`)}, "s.json",
			[]string{"s.json", "file:///etc/passwd", "no file system"}},
		{"$ref climbing out", map[string][]byte{"a/s.json": []byte(`{"$ref": "../../../etc/x.json"}`)}, "a/s.json",
			[]string{"a/s.json", "etc/x.json", "not sent with the deploy"}},
		{"$ref to a file not sent", map[string][]byte{"s.json": []byte(`{"$ref": "other.json"}`)}, "s.json",
			[]string{"other.json", "not sent with the deploy"}},
		{"$schema of a custom metaschema", map[string][]byte{"s.json": []byte(`{"$schema": "https://example.com/meta"}`)}, "s.json",
			[]string{"https://example.com/meta"}},
		{"bad file name", map[string][]byte{"../x.json": []byte(`{}`)}, "../x.json", []string{"../x.json"}},
		{"huge number in a schema", map[string][]byte{"s.json": []byte(`{"minimum": 1e999999}`)}, "s.json", []string{"s.json", "number out of range"}},
		{"duplicate keyword", map[string][]byte{"s.json": []byte(`{"type": "string", "type": "integer"}`)}, "s.json",
			[]string{"s.json", "duplicate member name at type"}},
		{"duplicate property in a $ref target", map[string][]byte{"s.json": []byte(`{"$ref": "d.json"}`), "d.json": []byte(`{"properties": {"a": {}, "a": {"type": "string"}}}`)}, "s.json",
			[]string{"d.json", "duplicate member name at properties.a"}},
		{"invalid UTF-8 in a schema", map[string][]byte{"s.json": []byte("{\"description\": \"caf\xe9\"}")}, "s.json", []string{"s.json", "invalid UTF-8 at description"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.files, tt.root)
			if err == nil {
				t.Fatal("compiled")
			}
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("not ErrInvalidArgument: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
		})
	}
}

func TestUsedListsRootsAndRefTargetsOnly(t *testing.T) {
	c, err := NewCompiler(map[string][]byte{
		"schemas/order.json":       []byte(orderSchema),
		"schemas/common/item.json": []byte(itemSchema),
		"unused.json":              []byte(`not even JSON`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile("schemas/order.json"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Used(), ","); got != "schemas/common/item.json,schemas/order.json" {
		t.Errorf("used = %s", got)
	}
}

func TestFileNamesWithURLCharacters(t *testing.T) {
	got, err := Compile(map[string][]byte{
		"a#b.json":    []byte(`{"$ref": "c%3Fd.json"}`),
		"c?d.json":    []byte(`{"type": "string"}`),
		"x y/z%.json": []byte(`{"type": "integer"}`),
	}, "a#b.json", "x y/z%.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := got["a#b.json"].ValidateJSON(KindEvent, []byte(`1`)); err == nil || err.Error() != "event does not match schema: event: type: want string" {
		t.Errorf("a#b.json: %v", err)
	}
	if err := got["x y/z%.json"].ValidateJSON(KindEvent, []byte(`1`)); err != nil {
		t.Errorf("x y/z%%.json: %v", err)
	}
}

func TestRequestCheck(t *testing.T) {
	files := map[string][]byte{
		"body.json":   []byte(`{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}`),
		"query.json":  []byte(`{"type":"object","properties":{"limit":{"type":"string","pattern":"^[0-9]{1,3}$"},"tag":{"type":"array","maxItems":2}},"additionalProperties":false}`),
		"params.json": []byte(`{"type":"object","properties":{"id":{"type":"string","pattern":"^[0-9]+$"}}}`),
	}
	s, err := Compile(files, "body.json", "query.json", "params.json")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRequest([]string{"application/json", "application/merge-patch+json"}, s["body.json"], s["query.json"], s["params.json"])
	q := func(s string) url.Values { v, _ := url.ParseQuery(s); return v }
	id := map[string]string{"id": "42"}
	tests := []struct {
		name   string
		ctype  string
		query  url.Values
		params map[string]string
		body   string
		status int
		want   string
	}{
		{"valid", "application/json", q("limit=10&tag=a&tag=b"), id, `{"name":"x"}`, 0, ""},
		{"charset ignored, case ignored", "Application/JSON; charset=utf-8", nil, id, `{"name":"x"}`, 0, ""},
		{"second listed type", "application/merge-patch+json", nil, id, `{"name":"x"}`, 0, ""},
		{"wrong content type", "text/plain", nil, id, `{"name":"x"}`, 415, "unsupported media type (accepted: application/json, application/merge-patch+json)"},
		{"no content type", "", nil, id, `{"name":"x"}`, 415, "unsupported media type"},
		{"malformed content type", "application/json; ===", nil, id, `{"name":"x"}`, 415, "unsupported media type"},
		{"empty body skips the media type, not the schema", "", nil, id, ``, 400, "request does not match schema: body: required"},
		{"bad path parameter", "application/json", nil, map[string]string{"id": "abc"}, `{"name":"x"}`, 400,
			"request does not match schema: params.id: pattern: does not match ^[0-9]+$"},
		{"bad query parameter", "application/json", q("limit=abcd"), id, `{"name":"x"}`, 400,
			"request does not match schema: query.limit: pattern: does not match ^[0-9]{1,3}$"},
		{"unknown query parameter", "application/json", q("debug=1"), id, `{"name":"x"}`, 400,
			"request does not match schema: query.debug: not allowed"},
		{"repeated parameter is an array", "application/json", q("limit=1&limit=2"), id, `{"name":"x"}`, 400,
			"request does not match schema: query.limit: type: want string"},
		{"too many repeats", "application/json", q("tag=a&tag=b&tag=c"), id, `{"name":"x"}`, 400,
			"request does not match schema: query.tag: maxItems: want at most 2 items"},
		{"body missing field", "application/json", nil, id, `{}`, 400, "request does not match schema: body.name: required"},
		{"body not JSON", "application/json", nil, id, `name=x`, 400, "body is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Check(tt.ctype, tt.query, tt.params, []byte(tt.body))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if se.Status() != tt.status || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %d %q, want %d %q", se.Status(), err, tt.status, tt.want)
			}
		})
	}

	// Content types alone (no schema) check only the media type.
	only := NewRequest([]string{"text/csv"}, nil, nil, nil)
	if err := only.Check("text/csv", nil, nil, []byte("a,b")); err != nil {
		t.Errorf("csv refused: %v", err)
	}
	if err := only.Check("application/json", nil, nil, []byte("{}")); !errors.Is(err, ErrContentType) {
		t.Errorf("json accepted on a csv route: %v", err)
	}
	if NewRequest(nil, nil, nil, nil) != nil {
		t.Error("a trigger with nothing to check got a check")
	}
	var none *Request
	if err := none.Check("", nil, nil, []byte("anything")); err != nil {
		t.Errorf("nil check refused: %v", err)
	}
}

func TestFormatsAreAsserted(t *testing.T) {
	s, err := Compile(map[string][]byte{"s.json": []byte(`{"type":"string","format":"date-time"}`)}, "s.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := s["s.json"].ValidateJSON(KindEvent, []byte(`"2024-01-02T03:04:05Z"`)); err != nil {
		t.Errorf("valid date-time refused: %v", err)
	}
	if err := s["s.json"].ValidateJSON(KindEvent, []byte(`"yesterday"`)); err == nil || err.Error() != "event does not match schema: event: format: want date-time" {
		t.Errorf("bad date-time: %v", err)
	}
}

func TestDeepAndWideInputStayBounded(t *testing.T) {
	s, err := Compile(map[string][]byte{"s.json": []byte(`{"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"}`)}, "s.json")
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", 5000) + "1" + strings.Repeat("]", 5000)
	err = s["s.json"].ValidateJSON(KindBody, []byte(deep))
	if err == nil {
		t.Fatal("accepted a number where arrays are required")
	}
	if len(err.Error()) > 400 {
		t.Errorf("message of %d bytes for a deep document", len(err.Error()))
	}
	// Many failing items: only MaxReported are listed.
	wide := "[" + strings.Repeat("1,", 9999) + "1]"
	err = s["s.json"].ValidateJSON(KindBody, []byte(wide))
	var se *Error
	if !errors.As(err, &se) || len(se.Violations) != MaxReported || se.Total != 10000 {
		t.Fatalf("wide: %v", err)
	}
}
