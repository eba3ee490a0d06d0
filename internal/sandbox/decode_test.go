package sandbox

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
)

func TestDecodeResponseMeta(t *testing.T) {
	tests := []struct {
		in      string
		status  int
		wantErr bool
	}{
		{``, 200, false},
		{`{}`, 200, false},
		{`{"status":404,"headers":{"Content-Type":"text/plain"}}`, 404, false},
		{`{"status":99}`, 0, true},
		{`{"status":600}`, 0, true},
		{`{"status":200,"extra":1}`, 0, true},
		{`{"status":200} {}`, 0, true},
		{`{"headers":{"Bad Name":"x"}}`, 0, true},
		{`{"headers":{"X-A":"a\r\nSet-Cookie: x=1"}}`, 0, true},
		{`{"headers":{"X-A":"tab\tok"}}`, 200, false},
		{`{"headers":{"Set-Cookie":"a=1\nb=2"}}`, 200, false},
		{`{"headers":{"Set-Cookie":"a=1\nb=\r2"}}`, 0, true},
		{`{"headers":{"Set-Cookie":"a=1\r\nX-Evil: 1"}}`, 0, true},
		{`[1,2]`, 0, true},
		{`{"status":201,"headers":{"A":"1","B":"2"}}`, 201, false},
		{`{"status":0}`, 200, false},
		{`{"status":007}`, 0, true},
		{`{"status":200,"headers":{"A":"1","A":"2"}}`, 200, false},
		{`{"status":200,"headers":{"":"x"}}`, 0, true},
		{`{"status":200,"headers":{"A":"1"}}x`, 0, true},
	}
	for _, tt := range tests {
		resp, err := decodeResponseMeta([]byte(tt.in))
		if tt.wantErr {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("%q: err = %v, want invalid argument", tt.in, err)
			}
			continue
		}
		if err != nil || resp.Status != tt.status {
			t.Errorf("%q: got %d, %v; want %d", tt.in, resp.Status, err, tt.status)
		}
	}
}

func TestDecodeFetchRequest(t *testing.T) {
	tests := []struct {
		in      string
		method  string
		wantErr bool
	}{
		{`{"url":"https://example.com"}`, "GET", false},
		{`{"method":"POST","url":"https://example.com","headers":{"A":"b"},"body":"aGk="}`, "POST", false},
		{`{"method":"GE T","url":"https://example.com"}`, "", true},
		{`{"url":""}`, "", true},
		{`{"url":"https://example.com/\n"}`, "", true},
		{`{"url":"https://example.com","body":"not base64!"}`, "", true},
		{`{"url":"https://example.com","timeout":5}`, "", true},
		{`null`, "", true},
	}
	for _, tt := range tests {
		req, err := decodeFetchRequest([]byte(tt.in))
		if tt.wantErr {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("%q: err = %v, want invalid argument", tt.in, err)
			}
			continue
		}
		if err != nil || req.Method != tt.method {
			t.Errorf("%q: got %+v, %v", tt.in, req, err)
		}
	}
}

func FuzzDecodeResponseMeta(f *testing.F) {
	f.Add([]byte(`{"status":201,"headers":{"Content-Type":"application/json"}}`))
	f.Add([]byte(`{"headers":{"X":"a\r\nb"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeResponseMeta(b)
		if err != nil {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Fatalf("error %v is not invalid argument", err)
			}
			return
		}
		if resp.Status < 100 || resp.Status > 599 {
			t.Fatalf("accepted status %d", resp.Status)
		}
		if err := checkHeaders(resp.Headers); err != nil {
			t.Fatalf("accepted bad headers: %v", err)
		}
	})
}

// FuzzParseResponseMeta checks that the fast path of decodeResponseMeta
// only accepts what the strict decoder accepts, with the same meaning.
func FuzzParseResponseMeta(f *testing.F) {
	f.Add([]byte(`{"status":201,"headers":{"Content-Type":"application/json"}}`))
	f.Add([]byte(`{"status":0}`))
	f.Add([]byte(`{"status":200,"headers":{"A":"1","B":"2"}}`))
	f.Add([]byte(`{"status":200,"headers":{"A":"1","A":"2"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast responseMeta
		if !parseResponseMeta(b, &fast) {
			return
		}
		var ref responseMeta
		if err := strictjson.Unmarshal(b, &ref); err != nil {
			t.Fatalf("fast path accepted %q, the strict decoder refused it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q:\nfast %+v\nref  %+v", b, fast, ref)
		}
	})
}

func FuzzDecodeFetchRequest(f *testing.F) {
	f.Add([]byte(`{"method":"POST","url":"https://api.example.com/x","headers":{"A":"b"},"body":"cGluZw=="}`))
	f.Add([]byte(`{"url":"http://169.254.169.254/latest/meta-data"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeFetchRequest(b)
		if err != nil {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Fatalf("error %v is not invalid argument", err)
			}
			return
		}
		if !isToken(req.Method) || req.URL == "" {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func TestDecodeInvokeRequest(t *testing.T) {
	tests := []struct {
		in      string
		method  string
		path    string
		wantErr bool
	}{
		{`{"path":"/thumbs/7"}`, "GET", "/thumbs/7", false},
		{`{"method":"POST","path":"/thumbs/7?size=small","headers":{"Content-Type":"image/png"},"body":"aGk="}`, "POST", "/thumbs/7?size=small", false},
		{`{"method":"GE T","path":"/a"}`, "", "", true},
		{`{"path":""}`, "", "", true},
		{`{"method":"GET"}`, "", "", true},
		{`{"path":"/a\r\nX-Injected: 1"}`, "", "", true},
		{`{"path":"/a","headers":{"Bad Name":"x"}}`, "", "", true},
		{`{"path":"/a","headers":{"A":"line\nbreak"}}`, "", "", true},
		{`{"path":"/a","body":"not base64!"}`, "", "", true},
		{`{"path":"/a","url":"https://example.com"}`, "", "", true},
		{`{"path":"/a"} {}`, "", "", true},
		{`null`, "", "", true},
	}
	for _, tt := range tests {
		req, err := decodeInvokeRequest([]byte(tt.in))
		if tt.wantErr {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("%q: err = %v, want invalid argument", tt.in, err)
			}
			continue
		}
		if err != nil || req.Method != tt.method || req.Path != tt.path {
			t.Errorf("%q: got %+v, %v", tt.in, req, err)
		}
	}
	long := `{"path":"/` + strings.Repeat("a", maxURLLen) + `"}`
	if _, err := decodeInvokeRequest([]byte(long)); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Errorf("a path over %d bytes: err = %v", maxURLLen, err)
	}
}

func FuzzDecodeInvokeRequest(f *testing.F) {
	f.Add([]byte(`{"method":"POST","path":"/internal/thumb/7?size=s","headers":{"A":"b"},"body":"cGluZw=="}`))
	f.Add([]byte(`{"path":"/%2e%2e/admin"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeInvokeRequest(b)
		if err != nil {
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Fatalf("error %v is not invalid argument", err)
			}
			return
		}
		if !isToken(req.Method) || req.Path == "" || len(req.Path) > maxURLLen || strings.ContainsFunc(req.Path, isCTL) {
			t.Fatalf("accepted %+v", req)
		}
		if err := checkHeaders(req.Headers); err != nil {
			t.Fatalf("accepted headers %v: %v", req.Headers, err)
		}
	})
}
