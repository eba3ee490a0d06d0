package gateway

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/manifest"
)

func TestReadAtMost(t *testing.T) {
	const limit = 10
	big := strings.Repeat("y", presizeBody+1)
	cases := []struct {
		name     string
		body     string
		declared int64 // -1: unknown (chunked)
		limit    int64
		want     string
		err      bool // any error
		tooLarge bool // an *http.MaxBytesError
	}{
		{name: "declared", body: "0123456789", declared: 10, limit: limit, want: "0123456789"},
		{name: "empty", declared: 0, limit: limit},
		{name: "unknown length within limit", body: "abc", declared: -1, limit: limit, want: "abc"},
		{name: "unknown length over limit", body: "0123456789x", declared: -1, limit: limit, err: true, tooLarge: true},
		{name: "declared but cut short", body: "abc", declared: 5, limit: limit, err: true},
		{name: "declared, too large to presize", body: big, declared: int64(len(big)), limit: int64(len(big)), want: big},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(tc.body)))
			r.ContentLength = tc.declared
			got, err := readAtMost(httptest.NewRecorder(), r, tc.limit)
			var mbe *http.MaxBytesError
			switch {
			case tc.err != (err != nil):
				t.Fatalf("error %v, want one: %v", err, tc.err)
			case tc.tooLarge != errors.As(err, &mbe):
				t.Fatalf("error %v, want a MaxBytesError: %v", err, tc.tooLarge)
			case !tc.err && (got == nil || string(got) != tc.want):
				t.Fatalf("body %q, want %q (never nil)", got, tc.want)
			}
		})
	}
}

func TestForwardHeadersDropsCredentialsAndHopHeaders(t *testing.T) {
	h := http.Header{
		"Content-Type": {"application/json"}, "X-Trace": {"a", "b"},
		"Authorization": {"Bearer secret"}, "Aegis-Signature": {"t=1,v1=00"}, "X-Hook-Sig": {"t=1,v1=11"},
		HeaderAsync: {"true"}, "Connection": {"keep-alive"}, "Content-Length": {"2"}, "Te": {"trailers"},
	}
	cases := []struct {
		rt   *route.Route
		want []string
	}{
		// X-Hook-Sig is an ordinary header on a route that does not sign with it.
		{&route.Route{}, []string{"Content-Type", "X-Hook-Sig", "X-Trace"}},
		{&route.Route{HMAC: &manifest.HMACAuth{Secret: "s", Header: "x-hook-sig"}}, []string{"Content-Type", "X-Trace"}},
	}
	for _, tc := range cases {
		got := forwardHeaders(h, tc.rt)
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, tc.want) {
			t.Errorf("route %+v: guest sees %v, want %v", tc.rt.HMAC, keys, tc.want)
		}
		if len(got["X-Trace"]) != 2 {
			t.Errorf("values not kept: %v", got["X-Trace"])
		}
	}
}
