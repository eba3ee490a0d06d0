package route

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
)

// FuzzMatch: Match never panics, answers only with a route, ErrNotFound or a
// 405; and a match's parameters put back into its pattern give the cleaned
// path, so no part of the request is lost or invented.
func FuzzMatch(f *testing.F) {
	tbl := mustNew(f, diaryRoutes())
	for _, s := range []string{
		"/", "/entries", "/entries/", "/entries/new", "/entries/%41", "/entries/a%2Fb",
		"/entries/%2e%2e", "/entries/7/photos/p", "/users/x/", "//", "/a/x/z", "/entries/%",
	} {
		f.Add("GET", s)
	}
	f.Add("HEAD", "/entries/1")
	f.Add("DELETE", "/entries/new")
	f.Fuzz(func(t *testing.T, method, path string) {
		r, params, err := tbl.Match(method, path)
		if err != nil {
			var mna *MethodNotAllowedError
			if !errors.Is(err, aegis.ErrNotFound) && !(errors.As(err, &mna) && len(mna.Allow) > 0) {
				t.Fatalf("Match(%q, %q): unexpected error %v", method, path, err)
			}
			return
		}
		if r.Method != method && !(method == "HEAD" && r.Method == "GET") {
			t.Fatalf("Match(%q, %q) matched %s", method, path, r.Method)
		}
		clean, ok := Clean(path)
		if !ok {
			t.Fatalf("matched %q although Clean refuses it", path)
		}
		if want := referenceClean(path); clean != want {
			t.Fatalf("Clean(%q) = %q, reference %q", path, clean, want)
		}
		got := r.Path
		for name, v := range params {
			got = strings.Replace(got, "{"+name+"}", v, 1)
		}
		if got != clean {
			t.Fatalf("pattern %s with %v = %q, want %q", r.Path, params, got, clean)
		}
	})
}

// referenceClean is Clean's contract written the slow, obvious way.
func referenceClean(path string) string {
	if path == "/" {
		return "/"
	}
	segs := strings.Split(strings.TrimSuffix(path, "/")[1:], "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "!" + err.Error()
		}
		segs[i] = d
	}
	return "/" + strings.Join(segs, "/")
}
