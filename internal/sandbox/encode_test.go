package sandbox

import (
	"encoding/json"
	"testing"
)

var requestMetaSeeds = []*Request{
	{Kind: KindHTTP, RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Method: "POST", Path: "/entries/7",
		Params:  map[string]string{"id": "7", "a": "<&>"},
		Query:   map[string][]string{"q": {"a", "b"}, "empty": {}, "nil": nil},
		Headers: map[string][]string{"Content-Type": {"application/json"}, "X-Odd": {"\x00\x7f\b\f\n\r\t\"\\\u2028\u2029\xff\xfe é"}}},
	{Kind: KindEvent, RequestID: "r2", Topic: "image.saved", Attempt: 3},
	{Kind: KindEvent, RequestID: "r5", Topic: "image.saved", Attempt: 1, Hop: 16},
	{Kind: KindObject, RequestID: "r3", Key: "images/cat.png", Operation: "put"},
	{Kind: KindSchedule, RequestID: "r4", Attempt: -1},
	{Kind: KindHTTP, RequestID: "r6", Identity: &Identity{Scheme: "jwt", Subject: "u<1>", Issuer: "https://id.example",
		Claims: map[string]any{"aud": []any{"a", "b"}, "exp": float64(1700000000), "x": map[string]any{"&": nil}}}},
	{Kind: KindHTTP, RequestID: "r7", Attempt: 1, Identity: &Identity{Scheme: "api-key", Subject: "ci"}, Hop: 2},
	{},
}

func TestAppendRequestMetaMatchesEncodingJSON(t *testing.T) {
	for _, req := range requestMetaSeeds {
		want, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRequestMeta(nil, req); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendRequestMeta(f *testing.F) {
	f.Add("http", "id", "POST", "/a", "k", "v", "Content-Type", "text/plain", 0)
	f.Add("event", "\xff<", "", "\u2028", "\x00", "\"\\", "", "\t", 7)
	f.Add("http", "r", "GET", "/me", "bench", "", "api-key", "", 1)
	f.Add("http", "r", "GET", "/me", "sub", "https://id.example", "jwt", "<&>", 2)
	f.Fuzz(func(t *testing.T, kind, id, method, path, k, v, hk, hv string, attempt int) {
		req := &Request{Kind: kind, RequestID: id, Method: method, Path: path, Topic: v, Key: k, Operation: hv, Attempt: attempt, Hop: attempt / 3,
			Params: map[string]string{k: v, v: k}, Query: map[string][]string{k: {v, hv}}, Headers: map[string][]string{hk: {hv}, k: nil}}
		switch attempt % 3 {
		case 1:
			req.Identity = &Identity{Scheme: hk, Subject: k, Issuer: v, Scopes: []string{hv}}
		case 2:
			req.Identity = &Identity{Scheme: hv, Subject: id, Claims: map[string]any{k: v, "n": float64(attempt), "l": []any{hk, nil, true}}}
		}
		want, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRequestMeta(nil, req); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}
