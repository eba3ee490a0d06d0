package aegis

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// A ServeMux with method and wildcard patterns, behind a middleware,
// answers what the platform routed to it.
func TestHandleServeMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := IdentityFrom(r.Context())
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Add("X-Seen", "a")
		w.Header().Add("X-Seen", "b")
		http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
		http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
		_, _ = io.WriteString(w, "item "+r.PathValue("id")+" q="+r.URL.Query().Get("q")+" by "+id.Subject+" in "+RequestIDFrom(r.Context()))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(b)
	})
	var sawPath string
	logged := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawPath = r.URL.Path
			next.ServeHTTP(w, r)
		})
	}
	h := logged(mux)

	resp := serveHTTP(h, &Request{Method: "GET", Path: "/items/7", Query: url.Values{"q": {"x y"}},
		Header: http.Header{"Accept": {"*/*"}}, RequestID: "req-1", Identity: &Identity{Scheme: "api-key", Subject: "ci"}})
	if resp.Status != 200 || string(resp.Body) != "item 7 q=x y by ci in req-1" || resp.Header["X-Seen"] != "a\nb" || resp.Header["Set-Cookie"] != "a=1\nb=2" || resp.Header["Content-Type"] != "text/plain" {
		t.Errorf("GET: %d %q %v", resp.Status, resp.Body, resp.Header)
	}
	if sawPath != "/items/7" {
		t.Errorf("middleware saw %q", sawPath)
	}
	resp = serveHTTP(h, &Request{Method: "POST", Path: "/items", Body: []byte(`{"a":1}`)})
	if resp.Status != 201 || string(resp.Body) != `{"a":1}` || !strings.HasPrefix(resp.Header["Content-Type"], "text/plain") {
		t.Errorf("POST: %d %q %v", resp.Status, resp.Body, resp.Header)
	}
	resp = serveHTTP(h, &Request{Method: "DELETE", Path: "/items/7"})
	if resp.Status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d %q", resp.Status, resp.Body)
	}
	resp = serveHTTP(h, &Request{Method: "GET", Path: "/nothing"})
	if resp.Status != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.Status)
	}
}

// A plain handler reads the route's parameters the platform matched.
func TestHandlePathValuesFromTheRoute(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.PathValue("user")+"/"+r.PathValue("id"))
	})
	resp := serveHTTP(h, &Request{Method: "GET", Path: "/u/ana/7", Params: map[string]string{"user": "ana", "id": "7"}})
	if string(resp.Body) != "ana/7" || resp.Status != 200 {
		t.Errorf("%d %q", resp.Status, resp.Body)
	}
	// No body and no status: 200, empty, no Content-Type invented.
	resp = serveHTTP(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &Request{Method: "GET", Path: "/"})
	if resp.Status != 200 || len(resp.Body) != 0 || resp.Header["Content-Type"] != "" {
		t.Errorf("empty: %d %q %v", resp.Status, resp.Body, resp.Header)
	}
	// An invalid status answers 500 rather than panicking.
	resp = serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(42) }), &Request{Method: "GET", Path: "/"})
	if resp.Status != 500 {
		t.Errorf("invalid status: %d", resp.Status)
	}
	// The first status wins, as in net/http.
	resp = serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(202)
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}), &Request{Method: "GET", Path: "/"})
	if resp.Status != 202 || resp.Header["Content-Type"] != "text/plain; charset=utf-8" {
		t.Errorf("first status: %d %v", resp.Status, resp.Header)
	}
}

// A Handle handler is unit-tested with httptest, the identity given with
// WithIdentity.
func TestHandleWithHTTPTest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := IdentityFrom(r.Context())
		if id == nil {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, id.Subject+" "+RequestIDFrom(r.Context()))
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 401 {
		t.Errorf("anonymous: %d", rec.Code)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(WithIdentity(r.Context(), &Identity{Scheme: "jwt", Subject: "ana"}, "req-9"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 || rec.Body.String() != "ana req-9" {
		t.Errorf("with identity: %d %q", rec.Code, rec.Body.String())
	}
}
