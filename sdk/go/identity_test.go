package aegis

import (
	"reflect"
	"testing"
)

// The identity of a caller has claims of any shape, so the fast path hands
// the whole document to encoding/json; everything else must still arrive.
func TestDecodeMetaWithIdentity(t *testing.T) {
	in := `{"kind":"http","request_id":"r1","method":"GET","path":"/me","headers":{"X":["1"]},` +
		`"identity":{"scheme":"jwt","subject":"u1","issuer":"https://id.example","claims":{"aud":["a","b"],"exp":1700000000,"sub":"u1"}}}`
	if parseMeta([]byte(in), &requestMeta{}) {
		t.Fatal("fast path accepted an identity it does not decode")
	}
	m, err := decodeMeta([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{Scheme: "jwt", Subject: "u1", Issuer: "https://id.example",
		Claims: map[string]any{"aud": []any{"a", "b"}, "exp": float64(1700000000), "sub": "u1"}}
	if !reflect.DeepEqual(m.Identity, want) {
		t.Fatalf("identity = %+v, want %+v", m.Identity, want)
	}
	if m.Path != "/me" || m.RequestID != "r1" || m.Headers["X"][0] != "1" {
		t.Fatalf("meta = %+v", m)
	}

	defer func() { httpHandler, eventHandler = nil, nil }()
	var got *Request
	HandleHTTP(func(r *Request) *Response { got = r; return nil })
	if code := dispatch(&m, nil); code != 0 {
		t.Fatalf("code %d", code)
	}
	if !reflect.DeepEqual(got.Identity, want) {
		t.Fatalf("handler saw identity %+v", got.Identity)
	}
}

func TestNoIdentityOnPublicRoutes(t *testing.T) {
	m, err := decodeMeta([]byte(`{"kind":"http","path":"/"}`))
	if err != nil || m.Identity != nil {
		t.Fatalf("identity = %+v, err %v", m.Identity, err)
	}
}
