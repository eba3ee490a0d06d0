package schema

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// A text encoding/json reads one way and another parser could read another
// way is refused at the place it was found, whatever the schema says, and
// the message never carries what was sent there.
func TestAmbiguousJSONIsRefused(t *testing.T) {
	s := compileOrder(t)
	const secret = "hunter2SECRET"
	tests := []struct {
		name, body string
		want       string // the whole message
	}{
		{"duplicate at the top, the last one valid", `{"name":{"$gt":"` + secret + `"},"name":"ok","items":[]}`,
			"request does not match schema: body.name: duplicate member name"},
		{"duplicate, the first one valid", `{"name":"ok","items":[],"name":"` + secret + `"}`,
			"request does not match schema: body.name: duplicate member name"},
		{"same name after unescaping", `{"na\u006de":"` + secret + `","name":"ok","items":[]}`,
			"request does not match schema: body.name: duplicate member name"},
		{"both escaped differently", `{"\u006eame":"` + secret + `","nam\u0065":"ok","items":[]}`,
			"request does not match schema: body.name: duplicate member name"},
		{"nested in an array item", `{"name":"x","items":[{"name":"a"},{"name":"` + secret + `","qty":1,"name":"b"}]}`,
			"request does not match schema: body.items[1].name: duplicate member name"},
		{"in arrays of arrays", `[[1,{"a":"` + secret + `","a":2}]]`,
			"request does not match schema: body[0][1].a: duplicate member name"},
		{"a member named like an index", `{"name":"x","items":[],"0":{"a":1,"a":"` + secret + `"}}`,
			`request does not match schema: body["0"].a: duplicate member name`},
		{"array told from what a later duplicate turns it into", `{"items":[{"name":"a","name":"` + secret + `"}],"items":{"0":1}}`,
			"request does not match schema: body.items[0].name: duplicate member name"},
		{"the duplicated container itself", `{"name":"x","items":[{"name":"` + secret + `"}],"items":[]}`,
			"request does not match schema: body.items: duplicate member name"},
		{"odd name is quoted", `{"a.b\n":1,"a.b\n":"` + secret + `"}`,
			`request does not match schema: body["a.b\n"]: duplicate member name`},
		{"empty names", `{"":1,"":"` + secret + `"}`,
			`request does not match schema: body[""]: duplicate member name`},
		{"invalid UTF-8 in a value", "{\"name\":\"x\xff" + secret + "\",\"items\":[]}",
			"request does not match schema: body.name: invalid UTF-8"},
		{"invalid UTF-8 in an array item", "{\"name\":\"x\",\"items\":[\"" + secret + "\xc3\"]}",
			"request does not match schema: body.items[0]: invalid UTF-8"},
		{"invalid UTF-8 in a member name", "{\"name\":\"x\",\"items\":[{\"" + secret + "\xed\xa0\x80\":1}]}",
			"request does not match schema: body.items[0]: invalid UTF-8"},
		{"invalid UTF-8 at the top", "\"" + secret + "\xf8\"",
			"request does not match schema: body: invalid UTF-8"},
		{"lone high surrogate", `{"name":"\ud800` + secret + `","items":[]}`,
			"request does not match schema: body.name: invalid surrogate escape"},
		{"lone low surrogate", `{"name":"x","items":["` + secret + `\udc00"]}`,
			"request does not match schema: body.items[0]: invalid surrogate escape"},
		{"surrogates in the wrong order", `["\udc00\ud800` + secret + `"]`,
			"request does not match schema: body[0]: invalid surrogate escape"},
		{"lone surrogate in a member name", `{"name":"x","items":[],"\ud83d` + secret + `":1}`,
			"request does not match schema: body: invalid surrogate escape"},
		{"the first problem is reported", "{\"a\":1,\"a\":2,\"b\":\"\xff\"}",
			"request does not match schema: body.a: duplicate member name"},
		// What is not one JSON value stays "not valid JSON".
		{"truncated after a duplicate", `{"name":1,"name":`, "body is not valid JSON"},
		{"a second value after a duplicate", `{"a":1,"a":2} {}`, "body is not valid JSON"},
		{"invalid UTF-8 outside strings", "{\"name\":\"x\",\"items\":[]}\xff", "body is not valid JSON"},
		{"bad escape", `{"name":"\x41"}`, "body is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ValidateJSON(KindBody, []byte(tt.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != tt.want {
				t.Errorf("message\n got: %s\nwant: %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("message echoes the value: %s", err)
			}
			var se *Error
			if !errors.As(err, &se) || se.Status() != http.StatusBadRequest || se.Kind != KindBody {
				t.Fatalf("error %#v: want a body *Error with status 400", err)
			}
			wantCause := ErrViolation
			if strings.HasSuffix(tt.want, "not valid JSON") {
				wantCause = ErrNotJSON
			}
			if !errors.Is(err, wantCause) {
				t.Errorf("cause of %v: want %v", err, wantCause)
			}
		})
	}
}

// Events and object events are refused the same way, under their own root.
func TestAmbiguousEventsAreRefused(t *testing.T) {
	got, err := Compile(map[string][]byte{"e.json": []byte(`{"type":"object","properties":{"id":{"type":"integer"}}}`)}, "e.json")
	if err != nil {
		t.Fatal(err)
	}
	s := got["e.json"]
	for _, tt := range []struct{ kind, data, want string }{
		{KindEvent, `{"id":"hunter2SECRET","id":7}`, "event does not match schema: event.id: duplicate member name"},
		{KindObject, `{"key":"a","operation":"put","key":"hunter2SECRET"}`, "object event does not match schema: object.key: duplicate member name"},
		{KindEvent, "{\"id\":7,\"note\":\"hunter2SECRET\x80\"}", "event does not match schema: event.note: invalid UTF-8"},
	} {
		err := s.ValidateJSON(tt.kind, []byte(tt.data))
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrViolation) {
			t.Errorf("%s: got %v, want %q", tt.data, err, tt.want)
		}
	}
}

// Valid documents read as before: same value, same verdicts, numbers as
// json.Number with their text.
func TestUnambiguousJSONIsUnchanged(t *testing.T) {
	s := compileOrder(t)
	valid := []string{
		`{"name":"x","items":[{"name":"a","qty":2}]}`,
		`{"name":"x","items":[{"name":"a"},{"name":"a"}]}`,                  // one name in sibling objects
		`{"name":"x","items":[{"name":"a","qty":1}],"count":10}`,            // a name at several depths
		`{"name":"\ud83d\ude00","items":[]}`,                                // a surrogate pair
		`{"name":"\ufffd` + "\uFFFD" + `","items":[]}`,                      // U+FFFD sent as such
		`{"name":"caf` + "\u00e9" + `\u00e9","items":[]}`,                   // UTF-8 and escapes
		`{"name":"x","items":[{"name":"a","qty":12345678901234567890123}]}`, // big, but a float64
		"\t{\"name\":\"x\",\"items\":[]}\n ",
	}
	for _, body := range valid {
		if err := s.ValidateJSON(KindBody, []byte(body)); err != nil {
			t.Errorf("%s: refused: %v", body, err)
		}
	}
	for _, text := range append(valid, `[1.50, -0, 1e3, 1E-7, null, true, "a\u0000b"]`, `"x"`, `0`) {
		got, err := decodeJSON([]byte(text))
		if err != nil {
			t.Errorf("%s: %v", text, err)
			continue
		}
		var want any
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %#v, encoding/json %#v", text, got, want)
		}
	}
	// The number rules are as they were.
	for body, want := range map[string]string{
		`{"name":"x","items":[],"count":1e999999}`: "request does not match schema: body.count: number out of range",
		`{"name":"x","items":[],"count":1e3}`:      "request does not match schema: body.count: maximum: want at most 10",
	} {
		if err := s.ValidateJSON(KindBody, []byte(body)); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}

// A deep duplicate gives a bounded message.
func TestDeepDuplicateStaysBounded(t *testing.T) {
	s := compileOrder(t)
	body := strings.Repeat(`{"abcdef":[`, 2000) + `{"a":1,"a":2}` + strings.Repeat(`]}`, 2000)
	err := s.ValidateJSON(KindBody, []byte(body))
	if err == nil || !errors.Is(err, ErrViolation) || !strings.HasSuffix(err.Error(), "…: duplicate member name") {
		t.Fatalf("got %v", err)
	}
	if len(err.Error()) > maxPathLen+100 {
		t.Errorf("message of %d bytes", len(err.Error()))
	}
}
