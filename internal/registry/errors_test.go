package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
)

// A route another app serves is refused with a message told from the
// deploying app's side, naming the holder once, whichever of the two
// names sorts first (the table builds apps in name order).
func TestRouteConflictNamesTheHolderOnce(t *testing.T) {
	holder := func(name string) string {
		return "app: " + name + `
functions:
  echo:
    source: ./echo
    triggers:
      - http: { method: POST, path: "/probe/{x}" }
`
	}
	clash := func(name string) string {
		return "app: " + name + `
functions:
  hello:
    source: ./hello
    triggers:
      - http: { method: POST, path: "/probe/{op}" }
`
	}
	for _, tt := range []struct{ holder, deployer string }{{"probe", "versioned"}, {"zeta", "alpha"}} {
		r := New(Config{})
		first, err := r.withApp(testApp(t, holder(tt.holder)))
		if err != nil {
			t.Fatal(err)
		}
		r.snap.Store(first)
		_, err = r.withApp(testApp(t, clash(tt.deployer)))
		var ce *RouteConflictError
		if !errors.As(err, &ce) || !errors.Is(err, aegis.ErrConflict) {
			t.Fatalf("%s after %s: %v, want a RouteConflictError", tt.deployer, tt.holder, err)
		}
		msg := err.Error()
		want := `route POST /probe/{op} of function "hello" is already served by app "` + tt.holder + `" (function "echo", POST /probe/{x})`
		if msg != want {
			t.Errorf("message\n%s\nwant\n%s", msg, want)
		}
		if strings.Count(msg, `app "`+tt.holder+`"`) != 1 || strings.Contains(msg, tt.deployer) {
			t.Errorf("message %q should name the holder once and not the deploying app (the caller knows it)", msg)
		}
	}
}
