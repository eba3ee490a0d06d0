package aegis

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// hostMeta is request meta as the host writes it for a typical HTTP
// request: no white space, members in a fixed order, Go's escaping.
const hostMeta = `{"kind":"http","request_id":"4bf92f3577b34da6a3ce929d0e0e4736","method":"POST","path":"/echo",` +
	`"headers":{"Accept-Encoding":["gzip"],"Content-Length":["26"],"Content-Type":["application/json"],"User-Agent":["Go-http-client/1.1"]}}`

func TestMemberNameWords(t *testing.T) {
	for name, w := range map[string]uint64{
		"kind": nameKind, "request_": nameRequestID, "method": nameMethod, "path": namePath,
		"params": nameParams, "query": nameQuery, "headers": nameHeaders, "topic": nameTopic,
		"key": nameKey, "operatio": nameOperation, "attempt": nameAttempt, "hop": nameHop,
		"identity": nameIdentity,
	} {
		if got := prefixWord(name); got != w {
			t.Errorf("%s: constant %#x, word %#x", name, w, got)
		}
	}
}

// The fast path must take what the host sends: falling back to
// encoding/json is correct but costs what the fast path saves.
func TestFastPathAcceptsHostMeta(t *testing.T) {
	many := make([]string, 0, 20)
	for i := range 20 {
		many = append(many, `"X-H`+strings.Repeat("h", i)+`":["`+strings.Repeat("v", i)+`"]`)
	}
	for _, in := range []string{
		hostMeta,
		// More values than the array allocated with the Request holds.
		`{"kind":"http","request_id":"r","method":"GET","path":"/a","query":{"q":["1","2","3","4","5"]},"headers":{` + strings.Join(many, ",") + `}}`,
		`{"kind":"http","request_id":"r","method":"GET","path":"/users/7","params":{"id":"7"},"hop":2}`,
		`{"kind":"event","request_id":"r","topic":"image.saved","attempt":1,"hop":1}`,
		`{"kind":"object","request_id":"r","key":"images/cat.png","operation":"delete","hop":1}`,
		`{"kind":"schedule","request_id":"r"}`,
		`{"kind":"http","request_id":"r","path":"/\u003cscript\u003e/caf\u00e9/\u2028"}`,
	} {
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
}

// Inputs near the edges of the fast path: whatever it accepts must read as
// encoding/json reads it, and decodeMeta must always agree with it.
func TestParseMetaEdgeCases(t *testing.T) {
	for _, in := range []string{
		`{"kind\u0000":"http"}`,
		`{"kind\u0000\u0000\u0000\u0000":"http"}`,
		`{"ki\u006ed":"http"}`,
		`{"request_ix":"r"}`,
		`{"request_id_":"r"}`,
		`{"request_":"r"}`,
		`{"operatioN":"x"}`,
		`{"operation":"put","operation":"delete"}`,
		`{"identity":{"scheme":"jwt"}}`,
		`{"Kind":"http"}`,
		`{"hop":-0}`,
		`{"hop":01}`,
		`{"hop":1.0}`,
		`{"hop":123456789}`,
		`{"hop":1234567890}`,
		`{"attempt":3}`,
		`{"a":1}`,
		`{"kind":"h"}`,
		`{"key":""}`,
		`{"hop":7}`,
		`{"headers":{"A":["1","2"],"B":["3"]},"query":{"A":[],"B":["4"]}}`,
		`{"headers":{"A":["1"],"A":["2"]}}`,
		`{"params":{"a":"1","a":"2"}}`,
		`{"path":"ends with eight"}`,
		`{"path":"` + strings.Repeat("p", 31) + `"}`,
		"{\"path\":\"tab\there\"}",
		`{"path":"\ud83d\ude00"}`,
		`{"path":"\uD800"}`,
		`{"path":"é"}`,
		"{\"path\":\"\xff\"}",
		`{"kind":"http"} `,
		`{"kind":"http"}x`,
		`{"kind":"http",}`,
		`{"kind":"http"`,
		`{"kind" :"http"}`,
		"\t{ \"headers\" : { \"A\" : [ \"1\" , \"2\" ] } }\n",
	} {
		var ref requestMeta
		refErr := json.Unmarshal([]byte(in), &ref)
		var fast requestMeta
		if parseMeta([]byte(in), &fast) {
			if refErr != nil {
				t.Errorf("fast path accepted %s, encoding/json refused it: %v", in, refErr)
			} else if !reflect.DeepEqual(fast, ref) {
				t.Errorf("%s:\nfast %+v\nref  %+v", in, fast, ref)
			}
		}
		got, err := decodeMeta([]byte(in))
		if (err != nil) != (refErr != nil) {
			t.Errorf("%s: decodeMeta error %v, encoding/json %v", in, err, refErr)
		} else if err == nil && !reflect.DeepEqual(got, ref) {
			t.Errorf("%s:\ndecodeMeta %+v\nref        %+v", in, got, ref)
		}
	}
}

// Lists share one backing array, query and headers alike; appending to
// one must never show up in another.
func TestListsDoNotOverlap(t *testing.T) {
	m, req, err := decodeRequest([]byte(`{"kind":"http","query":{"q":["1"]},"headers":{"A":["a"],"B":["b1","b2"]}}`))
	if err != nil || req == nil {
		t.Fatalf("req %v, err %v", req, err)
	}
	q := append(m.Query["q"], "2")
	a := append(m.Headers["A"], "x")
	if m.Headers["A"][0] != "a" || m.Headers["B"][0] != "b1" || m.Headers["B"][1] != "b2" || q[1] != "2" || a[1] != "x" {
		t.Fatalf("appending changed other lists: %+v", m)
	}
}

// The Request decoding allocated with the values is the one the handler
// gets, filled in.
func TestServeFillsDecodedRequest(t *testing.T) {
	defer func() { httpHandler, eventHandler = nil, nil }()
	m, req, err := decodeRequest([]byte(hostMeta))
	if err != nil || req == nil {
		t.Fatalf("req %v, err %v", req, err)
	}
	var got *Request
	HandleHTTP(func(r *Request) *Response { got = r; return nil })
	if code := serve(&m, []byte("{}"), req); code != 0 {
		t.Fatalf("code %d", code)
	}
	if got != req || got.Method != "POST" || got.Path != "/echo" || got.Header.Get("Content-Type") != "application/json" ||
		string(got.Body) != "{}" || got.RequestID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("handler got %+v", got)
	}
}

// A typical request costs three allocations to decode: the header map
// (two: the map and its slots) and the Request with the header values.
// An API key's identity is read by the scanner, not by encoding/json: one
// allocation for the Identity on top of the meta's own.
func TestDecodeAPIKeyIdentityWithoutReflection(t *testing.T) {
	in := []byte(hostMeta[:len(hostMeta)-1] + `,"identity":{"scheme":"api-key","subject":"bench"}}`)
	base := testing.AllocsPerRun(100, func() { _, _, _ = decodeRequest([]byte(hostMeta)) })
	allocs := testing.AllocsPerRun(100, func() {
		m, _, err := decodeRequest(in)
		if err != nil || m.Identity == nil || m.Identity.Subject != "bench" {
			t.Fatalf("identity %+v, err %v", m.Identity, err)
		}
	})
	if allocs > base+1 {
		t.Errorf("%v allocations with an API key identity, %v without: want at most one more", allocs, base)
	}
}

func TestDecodeRequestAllocations(t *testing.T) {
	in := []byte(hostMeta)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := decodeRequest(in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Errorf("%v allocations to decode the request meta, want at most 3", allocs)
	}
	noHeaders := []byte(`{"kind":"http","request_id":"r","method":"GET","path":"/"}`)
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = decodeRequest(noHeaders) }); allocs != 0 {
		t.Errorf("%v allocations to decode meta without maps, want 0", allocs)
	}
}

var identitySeeds = []string{
	hostMeta[:len(hostMeta)-1] + `,"identity":{"scheme":"jwt","subject":"user-7","issuer":"https://login.example.com","claims":{"aud":["shop-api","x"],"exp":1767225600,"n":null,"ok":true,"sub":"user-7","nested":{"a":[1,2.5e3,-0.1,{}],"b":"\u00e9\"}"}}}}`,
	`{"kind":"http","request_id":"r","identity":{"scheme":"function","subject":"app/fn"},"hop":1}`,
	`{"kind":"http","identity":null}`,
	`{"identity":{"scheme":"api-key","subject":"k"},"identity":{"issuer":"i"}}`,
	`{"identity":{"claims":5}}`,
	`{"identity":{"claims":{"a":tru}}}`,
	`{"identity":{"claims":{"a":1 2}}}`,
	`{"identity":{"claims":{"a":[1,]}}}`,
	`{"identity":"jwt"}`,
	`{"identity": { "Scheme" : "jwt" } , "kind":"http"}`,
	`{"identityX":{}}`,
	`{"identity":{"claims":{"s":"\ud83d\ude00"}}}`,
	`{"identity":{"claims":{"deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}}`,
	`{"identity":{"claims":{"x":1}}`,
	`{"identity":}`,
	`{"identity":{"claims":{"x":"\u0000"}},"kind":"event"}`,
	`{"identity":{"scheme":"api-key","subject":"bench"}}`,
	`{"identity":{}}`,
	`{"identity":{"scheme":"api-key","scheme":"jwt"}}`,
	`{"identity":{"subject":"a\"b","scheme":"hmac","issuer":"é"}}`,
	`{"identity":{"scheme":"jwt","claims":null}}`,
	`{"identity":{"scheme":"jwt","claims":{},"claims":{"a":1}}}`,
	`{"identity":{"scheme":"jwt","SUBJECT":"x"}}`,
	`{"identity":{"scheme":7}}`,
	`{"identity":{"scheme":"x",}}`,
	`{"identity":{"scheme":"x"} }`,
	`{"identity":{"scheme":"x","other":1}}`,
	// Members the SDK does not know: ignored, unless encoding/json would
	// match them to a known one or refuse their value.
	`{"kind":"http","future":{"a":[1,"x",{"b":null}]},"zone":"eu-1","n":-1.5e+3,"t":true,"request_id":"r"}`,
	`{"kind":"http","KIND":"event"}`,
	`{"kind":"http","\u212aind":"event"}`,
	`{"kind":"http","future":tru}`,
	`{"kind":"http","future":01}`,
	`{"kind":"http","future":"\ud800"}`,
	`{"kind":"http","future":[1,]}`,
	`{"kind":"http","future":1,"future":2}`,
}

// An identity is decoded alone by encoding/json; the rest of the meta
// stays on the fast path.
func TestIdentityKeepsTheFastPath(t *testing.T) {
	m, req, err := decodeRequest([]byte(identitySeeds[0]))
	if err != nil {
		t.Fatal(err)
	}
	if req == nil {
		t.Fatal("the meta went to encoding/json as a whole")
	}
	var ref requestMeta
	if err := json.Unmarshal([]byte(identitySeeds[0]), &ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, ref) || m.Identity == nil || m.Identity.Claims["sub"] != "user-7" {
		t.Fatalf("got %+v\nwant %+v", m, ref)
	}
}

// A member the host adds later does not send every guest to
// encoding/json.
func TestUnknownMemberKeepsTheFastPath(t *testing.T) {
	in := hostMeta[:len(hostMeta)-1] + `,"region":"eu-1","limits":{"timeout_ms":5000}}`
	m, req, err := decodeRequest([]byte(in))
	if err != nil || req == nil {
		t.Fatalf("req %v, err %v", req, err)
	}
	var ref requestMeta
	if err := json.Unmarshal([]byte(in), &ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, ref) {
		t.Fatalf("got %+v\nwant %+v", m, ref)
	}
}

// decodeRequest, fast path and fallbacks together, reads every document as
// encoding/json does, and fails where it fails.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range metaSeeds {
		f.Add([]byte(s))
	}
	for _, s := range identitySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _, err := decodeRequest(b)
		var ref requestMeta
		refErr := json.Unmarshal(b, &ref)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: error %v, encoding/json %v", b, err, refErr)
		}
		if err == nil && !reflect.DeepEqual(got, ref) {
			t.Fatalf("%q:\ngot %+v\nref %+v", b, got, ref)
		}
	})
}
