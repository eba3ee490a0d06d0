package route

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
)

func diaryRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/", App: "site", Function: "home", Public: true},
		{Method: "GET", Path: "/entries", App: "diary", Function: "list"},
		{Method: "POST", Path: "/entries", App: "diary", Function: "create", Auth: []string{"api-key"}},
		{Method: "GET", Path: "/entries/new", App: "diary", Function: "form"},
		{Method: "GET", Path: "/entries/{id}", App: "diary", Function: "get"},
		{Method: "DELETE", Path: "/entries/{id}", App: "diary", Function: "delete"},
		{Method: "POST", Path: "/entries/{id}/photos/{photo}", App: "diary", Function: "photo"},
		{Method: "GET", Path: "/entries/{id}/photos/latest", App: "diary", Function: "latest"},
		{Method: "PUT", Path: "/users/{user}/", App: "users", Function: "put"},
		{Method: "HEAD", Path: "/ping", App: "site", Function: "ping-head"},
		{Method: "GET", Path: "/ping", App: "site", Function: "ping"},
		{Method: "get", Path: "/lower", App: "site", Function: "lower"},
		// Backtracking: the literal branch "a/x" dead-ends for "/a/x/z".
		{Method: "GET", Path: "/a/x/y", App: "bt", Function: "literal"},
		{Method: "GET", Path: "/a/{p}/z", App: "bt", Function: "param"},
	}
}

func mustNew(t testing.TB, routes []Route) *Table {
	t.Helper()
	tbl, err := New(routes)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tbl
}

func TestMatch(t *testing.T) {
	tbl := mustNew(t, diaryRoutes())
	tests := []struct {
		method, path string
		function     string
		params       map[string]string
	}{
		{"GET", "/", "home", nil},
		{"GET", "/entries", "list", nil},
		{"GET", "/entries/", "list", nil},
		{"POST", "/entries", "create", nil},
		{"GET", "/entries/new", "form", nil},
		{"GET", "/entries/42", "get", map[string]string{"id": "42"}},
		{"DELETE", "/entries/new", "delete", map[string]string{"id": "new"}}, // literal has no DELETE
		{"POST", "/entries/7/photos/p1", "photo", map[string]string{"id": "7", "photo": "p1"}},
		{"GET", "/entries/7/photos/latest", "latest", map[string]string{"id": "7"}},
		{"PUT", "/users/ann", "put", map[string]string{"user": "ann"}},
		{"PUT", "/users/ann/", "put", map[string]string{"user": "ann"}},
		{"HEAD", "/ping", "ping-head", nil},
		{"HEAD", "/entries/9", "get", map[string]string{"id": "9"}}, // HEAD → GET
		{"HEAD", "/", "home", nil},
		{"GET", "/lower", "lower", nil},
		{"GET", "/a/x/y", "literal", nil},
		{"GET", "/a/x/z", "param", map[string]string{"p": "x"}},
		// Percent-decoding, once.
		{"GET", "/entries/a%20b", "get", map[string]string{"id": "a b"}},
		{"GET", "/entries/%25", "get", map[string]string{"id": "%"}},
		{"GET", "/entries/%2541", "get", map[string]string{"id": "%41"}},
		{"GET", "/entries/caf%C3%A9", "get", map[string]string{"id": "café"}},
		{"GET", "/entries/%6Eew", "form", nil}, // literals match decoded segments
		{"GET", "/entries/...", "get", map[string]string{"id": "..."}},
		{"GET", "/entries/.a", "get", map[string]string{"id": ".a"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r, params, err := tbl.Match(tt.method, tt.path)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if r.Function != tt.function {
				t.Fatalf("function = %q, want %q", r.Function, tt.function)
			}
			if !maps.Equal(params, tt.params) {
				t.Fatalf("params = %v, want %v", params, tt.params)
			}
		})
	}
}

func TestMatchNotFound(t *testing.T) {
	tbl := mustNew(t, diaryRoutes())
	for _, p := range []string{
		"", "entries", "/nope", "/entries/1/2", "/entries/1/photos",
		"//entries", "/entries//", "/entries//1", "//",
		"/entries/..", "/entries/.", "/entries/%2e%2E", "/entries/.%2e", "/entries/../entries",
		"/entries/a%00", "/entries/\x00", "/entries/a%2Fb", "/entries/a%2fb",
		"/entries/%", "/entries/%4", "/entries/%zz", "/entries/%4g",
		"/entries?x=1", "/entries#f",
		"/entries/" + strings.Repeat("a", MaxPathLen),
	} {
		if r, _, err := tbl.Match("GET", p); !errors.Is(err, aegis.ErrNotFound) {
			t.Errorf("Match(GET, %q) = %v, %v; want ErrNotFound", p, r, err)
		}
	}
	var empty *Table
	if _, _, err := empty.Match("GET", "/"); !errors.Is(err, aegis.ErrNotFound) {
		t.Errorf("nil table: %v", err)
	}
}

func TestMatchMethodNotAllowed(t *testing.T) {
	tbl := mustNew(t, diaryRoutes())
	tests := []struct {
		method, path string
		allow        []string
	}{
		{"PATCH", "/entries", []string{"GET", "HEAD", "POST"}},
		// The union over every route the path matches, literal and param.
		{"PUT", "/entries/new", []string{"DELETE", "GET", "HEAD"}},
		{"POST", "/entries/9", []string{"DELETE", "GET", "HEAD"}},
		{"GET", "/users/ann", []string{"PUT"}},
		{"HEAD", "/users/ann", []string{"PUT"}},
		{"POST", "/ping", []string{"GET", "HEAD"}},
	}
	for _, tt := range tests {
		_, _, err := tbl.Match(tt.method, tt.path)
		var mna *MethodNotAllowedError
		if !errors.As(err, &mna) || !errors.Is(err, ErrMethodNotAllowed) {
			t.Fatalf("Match(%s, %s) = %v, want MethodNotAllowedError", tt.method, tt.path, err)
		}
		if !slices.Equal(mna.Allow, tt.allow) {
			t.Errorf("Match(%s, %s): Allow = %v, want %v", tt.method, tt.path, mna.Allow, tt.allow)
		}
		if errors.Is(err, aegis.ErrNotFound) {
			t.Errorf("405 must not be a 404")
		}
	}
}

func TestNewConflicts(t *testing.T) {
	tests := []struct {
		a, b Route
	}{
		{Route{Method: "GET", Path: "/a/{x}", App: "one", Function: "f"}, Route{Method: "GET", Path: "/a/{y}", App: "two", Function: "g"}},
		{Route{Method: "GET", Path: "/a", App: "one", Function: "f"}, Route{Method: "GET", Path: "/a/", App: "two", Function: "g"}},
		{Route{Method: "POST", Path: "/a/{x}/b", App: "one", Function: "f"}, Route{Method: "post", Path: "/a/{id}/b", App: "two", Function: "g"}},
		{Route{Method: "GET", Path: "/", App: "one", Function: "f"}, Route{Method: "GET", Path: "/", App: "two", Function: "g"}},
	}
	for _, tt := range tests {
		_, err := New([]Route{tt.a, tt.b})
		if !errors.Is(err, aegis.ErrConflict) {
			t.Fatalf("%s vs %s: %v, want ErrConflict", tt.a.Path, tt.b.Path, err)
		}
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Existing.App != "one" || ce.Route.App != "two" {
			t.Errorf("%s vs %s: %#v, want a *ConflictError naming app two's route refused for app one's", tt.a.Path, tt.b.Path, err)
		}
		msg := err.Error()
		for _, want := range []string{`app "one"`, `function "f"`, `app "two"`, `function "g"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("conflict message %q does not name %s", msg, want)
			}
		}
	}
	// Same shape, different method; different shapes: fine.
	mustNew(t, []Route{
		{Method: "GET", Path: "/a/{x}"}, {Method: "POST", Path: "/a/{y}"},
		{Method: "GET", Path: "/a/b"}, {Method: "GET", Path: "/a/{x}/c"},
	})
}

func TestNewInvalid(t *testing.T) {
	for _, r := range []Route{
		{Method: "", Path: "/a"},
		{Method: "G ET", Path: "/a"},
		{Method: "GET1", Path: "/a"},
		{Method: "GET", Path: ""},
		{Method: "GET", Path: "a"},
		{Method: "GET", Path: "//a"},
		{Method: "GET", Path: "/a//b"},
		{Method: "GET", Path: "/a/../b"},
		{Method: "GET", Path: "/a/./b"},
		{Method: "GET", Path: "/a/{}"},
		{Method: "GET", Path: "/a/{1x}"},
		{Method: "GET", Path: "/a/{x-y}"},
		{Method: "GET", Path: "/a/x{y}"},
		{Method: "GET", Path: "/a/{y"},
		{Method: "GET", Path: "/a/{x}/{x}"},
		{Method: "GET", Path: "/a/%20"},
		{Method: "GET", Path: "/a b"},
		{Method: "GET", Path: "/a?b"},
		{Method: "GET", Path: "/" + strings.Repeat("a", MaxPathLen)},
	} {
		if _, err := New([]Route{r}); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("New(%q %q) = %v, want ErrInvalidArgument", r.Method, r.Path, err)
		}
	}
}

func TestTableIsolatedFromInput(t *testing.T) {
	routes := []Route{{Method: "GET", Path: "/a/", App: "x", Function: "f", Auth: []string{"api-key"}}}
	tbl := mustNew(t, routes)
	routes[0].Function = "changed"
	routes[0].Auth[0] = "changed"
	r, _, err := tbl.Match("GET", "/a")
	if err != nil || r.Function != "f" || r.Auth[0] != "api-key" {
		t.Fatalf("table changed with its input: %+v, %v", r, err)
	}
	if r.Path != "/a" {
		t.Fatalf("Path = %q, want normalized /a", r.Path)
	}
	list := tbl.Routes()
	list[0].Auth[0] = "changed"
	if r.Auth[0] != "api-key" {
		t.Fatal("Routes leaks the table's slices")
	}
}

func TestRoutesSorted(t *testing.T) {
	tbl := mustNew(t, diaryRoutes())
	list := tbl.Routes()
	if len(list) != len(diaryRoutes()) {
		t.Fatalf("%d routes, want %d", len(list), len(diaryRoutes()))
	}
	if !slices.IsSortedFunc(list, func(a, b Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	}) {
		t.Fatalf("not sorted: %v", list)
	}
}

// manyRoutes builds n routes of mixed shapes across apps.
func manyRoutes(n int) []Route {
	routes := make([]Route, 0, n)
	for i := 0; len(routes) < n; i++ {
		app := fmt.Sprintf("app%d", i)
		for _, r := range []Route{
			{Method: "GET", Path: "/" + app + "/items"},
			{Method: "POST", Path: "/" + app + "/items"},
			{Method: "GET", Path: "/" + app + "/items/{id}"},
			{Method: "PUT", Path: "/" + app + "/items/{id}"},
			{Method: "GET", Path: "/" + app + "/items/{id}/parts/{part}"},
		} {
			if len(routes) == n {
				break
			}
			r.App, r.Function = app, r.Method+r.Path
			routes = append(routes, r)
		}
	}
	return routes
}

func TestThousandRoutes(t *testing.T) {
	routes := manyRoutes(1000)
	tbl := mustNew(t, routes)
	for _, r := range routes {
		path := strings.NewReplacer("{id}", "i-1", "{part}", "p-2").Replace(r.Path)
		got, params, err := tbl.Match(r.Method, path)
		if err != nil || got.Function != r.Function {
			t.Fatalf("Match(%s %s) = %v, %v; want %s", r.Method, path, got, err, r.Function)
		}
		if strings.Contains(r.Path, "{id}") && params["id"] != "i-1" {
			t.Fatalf("params = %v", params)
		}
	}
}

func TestMatchAllocations(t *testing.T) {
	tbl := mustNew(t, manyRoutes(1000))
	// A params map costs what the runtime charges for a small map with
	// entries: measured here rather than assumed.
	mapAllocs := testing.AllocsPerRun(100, func() {
		m := make(map[string]string, 1)
		m["id"] = "x"
		sinkMap = m
	})
	for _, tt := range []struct {
		path string
		max  float64
	}{
		{"/app150/items", 0},
		{"/app150/items/", 0},
		{"/app150/items/42", mapAllocs},
		{"/app150/items/42/parts/7", mapAllocs},
		{"/app150/items/4%202", mapAllocs + 1}, // plus the decoded path
		{"/nothing/here/at/all", 0},            // a 404 is free
		{"/app150/items/../../etc", 0},         // and so is a refused path
	} {
		n := testing.AllocsPerRun(200, func() {
			if _, _, err := tbl.Match("GET", tt.path); err != nil && tt.max > 0 {
				t.Fatalf("Match(%s): %v", tt.path, err)
			}
		})
		if n > tt.max {
			t.Errorf("Match(%s): %v allocations, want at most %v", tt.path, n, tt.max)
		}
	}
}

var sinkMap map[string]string

// TestMatchHammer reads one table from many goroutines; run with -race.
func TestMatchHammer(t *testing.T) {
	tbl := mustNew(t, manyRoutes(1000))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				path := fmt.Sprintf("/app%d/items/%d", (g*1000+i)%200, i)
				r, params, err := tbl.Match("GET", path)
				if err != nil || params["id"] != fmt.Sprint(i) || !strings.HasSuffix(r.Path, "{id}") {
					t.Errorf("Match(%s) = %v, %v, %v", path, r, params, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkMatch matches against a table holding only the route asked for,
// and against 1,000 routes of 200 apps (the route asked for is the last
// app's, so nothing favours it).
func BenchmarkMatch(b *testing.B) {
	cases := []struct {
		name, pattern, path string
	}{
		{"literal", "/app199/items", "/app199/items"},
		{"param", "/app199/items/{id}", "/app199/items/42"},
		{"two-params", "/app199/items/{id}/parts/{part}", "/app199/items/42/parts/7"},
		{"escaped", "/app199/items/{id}", "/app199/items/4%202"},
		{"notfound", "/app199/items", "/nothing/here"},
	}
	many := mustNew(b, manyRoutes(1000))
	for _, c := range cases {
		one := mustNew(b, []Route{{Method: "GET", Path: c.pattern}})
		for _, tc := range []struct {
			n   int
			tbl *Table
		}{{1, one}, {1000, many}} {
			b.Run(fmt.Sprintf("routes=%d/%s", tc.n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					tc.tbl.Match("GET", c.path)
				}
			})
		}
	}
}
