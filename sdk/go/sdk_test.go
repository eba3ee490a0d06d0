package aegis

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var metaSeeds = []string{
	`{"kind":"http","request_id":"r1","method":"POST","path":"/items/7","params":{"id":"7"},"query":{"q":["a","b"]},"headers":{"Content-Type":["application/json"]}}`,
	`{"kind":"event","request_id":"r2","topic":"image.saved","attempt":3}`,
	`{"kind":"event","request_id":"r5","topic":"image.saved","attempt":1,"hop":16}`,
	`{"kind":"object","request_id":"r3","key":"images/\u00e9\u003c.png","operation":"put"}`,
	`{"kind":"http","headers":{"X":[]},"params":{},"query":{}}`,
	` { "kind" : "http" , "path" : "/a\"b\\c\/d\n" } `,
	`{}`,
	`{"kind":"http","path":"/a-path-long-enough-for-several-words/\u00e9t\u00e9/café-\"q\"-\\/end","headers":{"User-Agent":["Mozilla/5.0 (X11; Linux x86_64)   ü"],"X-Many":["a","bb","ccc","","dddddddddddddddd"],"X-None":[]}}`,
}

func TestParseMetaAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range metaSeeds {
		var fast requestMeta
		if !parseMeta([]byte(in), &fast) {
			t.Errorf("fast path refused %s", in)
			continue
		}
		var ref requestMeta
		if err := json.Unmarshal([]byte(in), &ref); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Errorf("%s:\nfast %+v\nref  %+v", in, fast, ref)
		}
	}
	// Shapes the fast path leaves to encoding/json still decode.
	for _, in := range []string{`{"kind":"http","future_field":{"a":1}}`, `{"Kind":"http"}`, `{"params":null}`, `{"path":"\ud83d\ude00"}`} {
		if _, err := decodeMeta([]byte(in)); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func FuzzParseMeta(f *testing.F) {
	for _, s := range metaSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast requestMeta
		if !parseMeta(b, &fast) {
			return
		}
		var ref requestMeta
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q:\nfast %+v\nref  %+v", b, fast, ref)
		}
	})
}

func FuzzEncodeResponseMeta(f *testing.F) {
	f.Add(200, "Content-Type", "application/json")
	f.Add(404, "X-\x00", "\xff\"\\\n")
	f.Fuzz(func(t *testing.T, status int, k, v string) {
		var got struct {
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
		}
		if err := json.Unmarshal(encodeResponseMeta(status, map[string]string{k: v}), &got); err != nil {
			t.Fatal(err)
		}
		// encoding/json is the reference for what the bytes mean.
		want, _ := json.Marshal(map[string]string{k: v})
		var wantH map[string]string
		_ = json.Unmarshal(want, &wantH)
		if got.Status != status || !reflect.DeepEqual(got.Headers, wantH) {
			t.Fatalf("round trip: got %d %q, want %d %q", got.Status, got.Headers, status, wantH)
		}
	})
}

func TestCallErrorMatchesSentinels(t *testing.T) {
	tests := []struct {
		code int
		want error
	}{
		{CodePermissionDenied, ErrPermissionDenied},
		{CodeNotFound, ErrNotFound},
		{CodeInvalidArgument, ErrInvalidArgument},
		{CodeLimitExceeded, ErrLimitExceeded},
		{CodeUnavailable, ErrUnavailable},
		{CodeInternal, ErrInternal},
	}
	for _, tt := range tests {
		err := error(&CallError{Code: tt.code, Message: "kv get x: denied"})
		if !errors.Is(err, tt.want) {
			t.Errorf("code %d does not match %v", tt.code, tt.want)
		}
		if errors.Is(err, errUnrelated) {
			t.Errorf("code %d matches an unrelated error", tt.code)
		}
	}
	if msg := (&CallError{Code: CodeNotFound}).Error(); msg != "not found" {
		t.Errorf("message without host text = %q", msg)
	}
}

var errUnrelated = errors.New("unrelated")

func TestOffPlatformCallsAreUnavailable(t *testing.T) {
	if _, err := KV("t").Get("k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("KV.Get: %v", err)
	}
	if err := Publish("t", nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Publish: %v", err)
	}
	if _, err := Fetch(&FetchRequest{URL: "https://example.com"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Fetch: %v", err)
	}
	if _, err := Invoke(&InvokeRequest{Method: "POST", Path: "/internal/x"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Invoke: %v", err)
	}
}

func TestResponseHelpers(t *testing.T) {
	r := JSON(201, map[string]int{"n": 1})
	if r.Status != 201 || string(r.Body) != `{"n":1}` || r.Header["Content-Type"] != "application/json" {
		t.Errorf("JSON = %+v", r)
	}
	if r := Text(200, "hi"); string(r.Body) != "hi" || r.Header["Content-Type"] != "text/plain; charset=utf-8" {
		t.Errorf("Text = %+v", r)
	}
	if r := Error(400, "bad"); r.Status != 400 || string(r.Body) != `{"error":"bad"}` {
		t.Errorf("Error = %+v", r)
	}
	if r := JSON(200, func() {}); r.Status != 500 {
		t.Errorf("unencodable value gave %d", r.Status)
	}
}

func TestDecodeJSONIsStrict(t *testing.T) {
	var v struct{ Name string }
	for _, body := range []string{`{"name":"a","extra":1}`, `{"name":"a"} {}`, `nope`} {
		if err := (&Request{Body: []byte(body)}).DecodeJSON(&v); err == nil {
			t.Errorf("%s decoded without error", body)
		}
	}
	if err := (&Request{Body: []byte(` {"name":"a"} `)}).DecodeJSON(&v); err != nil || v.Name != "a" {
		t.Errorf("valid body: %v %+v", err, v)
	}
}

func TestDispatchEvent(t *testing.T) {
	defer func() { httpHandler, eventHandler = nil, nil }()
	var got *Event
	HandleEvent(func(e *Event) error { got = e; return nil })
	if code := dispatch(&requestMeta{Kind: "event", Topic: "t", Attempt: 2, Hop: 3, RequestID: "r"}, []byte("d")); code != 0 {
		t.Fatalf("code %d", code)
	}
	if got.Topic != "t" || got.Attempt != 2 || got.Hop != 3 || string(got.Data) != "d" || got.RequestID != "r" {
		t.Fatalf("event = %+v", got)
	}
	HandleEvent(func(*Event) error { return errors.New("no") })
	if code := dispatch(&requestMeta{Kind: "event"}, nil); code != 1 {
		t.Fatalf("failing handler gave code %d", code)
	}
	eventHandler = nil
	if code := dispatch(&requestMeta{Kind: "http"}, nil); code != 1 {
		t.Fatalf("no handler gave code %d", code)
	}
}
