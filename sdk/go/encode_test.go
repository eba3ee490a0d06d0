package aegis

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var jsonStringSeeds = []string{
	"",
	"a",
	"application/json",
	"text/plain; charset=utf-8",
	"exactly8",
	"sixteen-bytes-ok",
	`quote " and backslash \ inside`,
	"control \x00\x01\x1f\b\f\n\r\t characters",
	"html <script>&amp;</script>",
	"line\u2028and\u2029paragraph separators",
	"invalid \xff\xfe UTF-8 \xe2\x82",
	"é, ü, 日本語, 😀",
	strings.Repeat("long plain value ", 20),
	"trailing special\n",
	"<",
}

// appendJSONString writes exactly what encoding/json writes, so the host
// reads back the same strings and error bodies do not change.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonStringSeeds {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		// Each of these leaves a different capacity after the string,
		// which plain reads into.
		for _, prefix := range [][]byte{nil, []byte("x"), make([]byte, 3, 3+len(s)+10), make([]byte, 0, 1024)} {
			got := appendJSONString(prefix, s)
			if !bytes.Equal(got[len(prefix):], want) {
				t.Errorf("%q: got %s, want %s", s, got[len(prefix):], want)
			}
			if !bytes.Equal(got[:len(prefix)], prefix) {
				t.Errorf("%q: prefix changed to %q", s, got[:len(prefix)])
			}
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// responseMetaRef is the document as docs/abi.md describes it.
type responseMetaRef struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
}

func TestAppendResponseMetaMatchesEncodingJSON(t *testing.T) {
	for _, tt := range []struct {
		status  int
		headers map[string]string
	}{
		{200, nil},
		{200, map[string]string{}},
		{201, map[string]string{"Content-Type": "application/json"}},
		{404, map[string]string{"X-\u2028": "<&>", "Location": "/items/7?a=1&b=2"}},
		{599, map[string]string{"A": "1", "B": "2", "C": "3", "D": "4", "E": "5", "F": "6", "G": "7", "H": "8", "I": "9"}},
		{0, nil},
		{1000, nil},
		{-7, nil},
	} {
		got := appendResponseMeta(nil, tt.status, tt.headers)
		if len(tt.headers) <= 1 {
			// One header or none: the order of members is fixed.
			want, _ := json.Marshal(responseMetaRef{tt.status, tt.headers})
			if !bytes.Equal(got, want) {
				t.Errorf("got %s, want %s", got, want)
			}
		}
		var back responseMetaRef
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if back.Status != tt.status || len(back.Headers) != len(tt.headers) || (len(tt.headers) > 0 && !reflect.DeepEqual(back.Headers, tt.headers)) {
			t.Errorf("%s read back as %+v", got, back)
		}
	}
}

func TestAppendStatusMatchesStrconv(t *testing.T) {
	for _, n := range []int{-1000, -1, 0, 9, 99, 100, 200, 404, 599, 999, 1000, 123456} {
		if got, want := string(appendStatus(nil, n)), strconv.Itoa(n); got != want {
			t.Errorf("appendStatus(%d) = %s", n, got)
		}
	}
}

// A reused buffer makes the response meta free: no allocation once it has
// grown to fit.
func TestAppendResponseMetaReusesItsBuffer(t *testing.T) {
	h := map[string]string{"Content-Type": "application/json", "X-Request": "r-1"}
	buf := appendResponseMeta(nil, 200, h)
	allocs := testing.AllocsPerRun(100, func() {
		buf = appendResponseMeta(buf[:0], 200, h)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per response meta", allocs)
	}
}

// Error writes what JSON wrote for the map it used to build.
func TestErrorMatchesJSONOfMap(t *testing.T) {
	defer func() { currentRequestID = "" }()
	for _, id := range []string{"", "4bf92f3577b34da6a3ce929d0e0e4736", "a<b"} {
		for _, msg := range jsonStringSeeds {
			currentRequestID = id
			got := Error(422, msg)
			m := map[string]string{"error": msg}
			if id != "" {
				m["request_id"] = id
			}
			want := JSON(422, m)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Error(%q) with id %q = %s, want %s", msg, id, got.Body, want.Body)
			}
		}
	}
}
