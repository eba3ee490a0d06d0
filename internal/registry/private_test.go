package registry

import (
	"errors"
	"slices"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/manifest"
)

func testApp(t *testing.T, text string) *App {
	t.Helper()
	m, err := manifest.Parse("aegis.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	m = m.WithDefaults()
	rules, err := compileRules(&versionRecord{App: m.App, File: "aegis.yaml", Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	return &App{Name: m.App, Manifest: m, rules: rules}
}

const shopApp = `app: shop
functions:
  front:
    source: ./front
    triggers:
      - http: { method: GET, path: /doc }
    grants: { invoke: [back] }
  back:
    source: ./back
    triggers:
      - http: { method: PUT, path: /doc, private: true }
      - http: { method: POST, path: "/internal/{id}", private: true }
      - http: { method: POST, path: /ruled, rule: 'identity.scheme == "function"' }
`

// Private routes never enter the gateway's table, so from outside they do
// not exist: 404 on their own path, and a 405 on a shared path does not
// list their method. The app's own table has them, for invoke.
func TestPrivateRoutesStayOutOfTheGatewayTable(t *testing.T) {
	r := New(Config{})
	// Another app serves publicly the very path shop keeps private: no
	// conflict, since the private one is only in shop's own table.
	other, err := r.withApp(testApp(t, `app: other
functions:
  pub:
    source: ./pub
    triggers:
      - http: { method: POST, path: "/internal/{name}", public: true }
`))
	if err != nil {
		t.Fatal(err)
	}
	r.snap.Store(other)
	snap, err := r.withApp(testApp(t, shopApp))
	if err != nil {
		t.Fatalf("a private route conflicted with another app's public one: %v", err)
	}

	for _, rt := range snap.Routes.Routes() {
		if rt.Private {
			t.Errorf("private route %s %s is in the gateway's table", rt.Method, rt.Path)
		}
	}
	_, _, err = snap.Routes.Match("PUT", "/doc")
	var mna *route.MethodNotAllowedError
	if !errors.As(err, &mna) || !slices.Equal(mna.Allow, []string{"GET", "HEAD"}) {
		t.Errorf("PUT /doc from outside: %v, want 405 allowing only GET, HEAD", err)
	}
	if rt, _, err := snap.Routes.Match("POST", "/internal/7"); err != nil || rt.App != "other" {
		t.Errorf("POST /internal/7 from outside: %+v, %v; want the other app's public route", rt, err)
	}

	own := snap.AppRoutes("shop")
	rt, params, err := own.Match("POST", "/internal/7")
	if err != nil || rt.App != "shop" || rt.Function != "back" || !rt.Private || params["id"] != "7" {
		t.Fatalf("shop's table: %+v %v %v", rt, params, err)
	}
	if rt, _, err := own.Match("PUT", "/doc"); err != nil || !rt.Private {
		t.Errorf("shop's table PUT /doc: %+v, %v", rt, err)
	}
	// The same route values on both paths: what travels with a route (the
	// rule today) applies to a call through invoke as at the gateway.
	pub, _, err := snap.Routes.Match("POST", "/ruled")
	if err != nil {
		t.Fatal(err)
	}
	inner, _, err := own.Match("POST", "/ruled")
	if err != nil || inner.Rule == nil || inner.Rule != pub.Rule {
		t.Errorf("the rule is not shared between the tables: %v vs %v (%v)", inner.Rule, pub.Rule, err)
	}
	// Tables are per app: shop cannot reach other's routes, nor the reverse.
	if _, _, err := snap.AppRoutes("other").Match("PUT", "/doc"); !errors.Is(err, aegis.ErrNotFound) {
		t.Errorf("other's table matched shop's route: %v", err)
	}
	if _, _, err := snap.AppRoutes("gone").Match("GET", "/doc"); !errors.Is(err, aegis.ErrNotFound) {
		t.Errorf("an app that is not active matched: %v", err)
	}
}

// Apps may share a private path; the snapshot still builds, and a request
// the gateway does not serve is recognized as aimed at a private route.
func TestPrivateRouteLookupAcrossApps(t *testing.T) {
	r := New(Config{})
	first, err := r.withApp(testApp(t, shopApp))
	if err != nil {
		t.Fatal(err)
	}
	r.snap.Store(first)
	snap, err := r.withApp(testApp(t, `app: copy
functions:
  back:
    source: ./back
    triggers:
      - http: { method: POST, path: "/internal/{key}", private: true }
      - http: { method: GET, path: /internal/list }
`))
	if err != nil {
		t.Fatalf("two apps with the same private path: %v", err)
	}
	for _, tt := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/internal/7", true},
		{"PUT", "/doc", true},
		{"GET", "/doc", false},           // served: not a probe
		{"GET", "/internal/list", false}, // served by copy
		{"DELETE", "/internal/7", false}, // no private route has DELETE
		{"POST", "/nothing", false},
	} {
		rt, ok := snap.PrivateRoute(tt.method, tt.path)
		if ok != tt.want || (ok && !rt.Private) {
			t.Errorf("PrivateRoute(%s %s) = %+v, %v; want %v", tt.method, tt.path, rt, ok, tt.want)
		}
	}
}
