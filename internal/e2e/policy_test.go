package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
)

const policyApp = `app: policy
functions:
  guarded:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/policy/op/{op}", rule: 'request.params.op == "echo"' }
      - http: { method: POST, path: "/policy/key/{op}", rule: 'identity.scheme == "api-key" && identity.key_name == "e2e"' }
      - http: { method: POST, path: "/policy/claim/{op}", rule: 'identity.claims.role == "admin"' }
`

// TestCELDenial: a route's rule lets in what it allows, refuses the rest
// with 403 and one security log line, and a rule that errors denies.
func TestCELDenial(t *testing.T) {
	in, key := sharedServer(t)
	deployProbe(t, in, writeManifest(t, policyApp))
	other, err := in.admin.CreateKey(context.Background(), fmt.Sprintf("policy-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, path, key string
		status          int
		reason          string // of the denial's log line
	}{
		{"rule over params allows", "/policy/op/echo", key, 200, ""},
		{"rule over params denies", "/policy/op/identity", key, 403, "rule false"},
		{"rule over identity allows the named key", "/policy/key/echo", key, 200, ""},
		{"rule over identity denies another key", "/policy/key/echo", other.Key, 403, "rule false"},
		{"a rule that errors denies", "/policy/claim/echo", key, 403, "rule error: no such key: role"},
		{"authentication comes first", "/policy/op/echo", "", 401, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, body, hdr := call(t, in.gateway, "POST", c.path, c.key, map[string]string{"x": "y"})
			if st != c.status {
				t.Fatalf("status %d, want %d (%s)", st, c.status, body)
			}
			id := hdr.Get("X-Request-Id")
			lines := in.logs.Lines("authorization denied", id)
			if c.status != 403 {
				if len(lines) != 0 {
					t.Errorf("denial logged for a request that was not denied: %v", lines)
				}
				return
			}
			if msg, _ := errorBody(t, body); msg != "forbidden" {
				t.Errorf("message %q, want forbidden", msg)
			}
			if strings.Contains(string(body), "rule") {
				t.Errorf("the rule or its error reached the client: %s", body)
			}
			if len(lines) != 1 {
				t.Fatalf("%d security log lines for request %s, want 1", len(lines), id)
			}
			l := lines[0]
			if l["security"] != true || l["level"] != "WARN" || l["app"] != "policy" || l["function"] != "guarded" ||
				!strings.HasPrefix(fmt.Sprint(l["reason"]), c.reason) || !strings.HasPrefix(fmt.Sprint(l["route"]), "POST /policy/") {
				t.Errorf("log line %v, want reason %q", l, c.reason)
			}
		})
	}
}

// TestCELRuleRefusesDeploy: a rule that does not compile refuses the deploy
// with 400 naming the field, and the active version keeps serving.
func TestCELRuleRefusesDeploy(t *testing.T) {
	in, key := sharedServer(t)
	deployProbe(t, in, writeManifest(t, policyApp))
	serving := func() {
		t.Helper()
		if st, body, _ := call(t, in.gateway, "POST", "/policy/op/echo", key, nil); st != 200 {
			t.Fatalf("active version stopped serving: %d %s", st, body)
		}
	}
	serving()
	for _, c := range []struct{ name, rule, want string }{
		{"syntax", `request.params.op ==`, "Syntax error"},
		{"unknown variable", `user.name == "x"`, "undeclared reference"},
		{"not a boolean", `request.params.op`, "not bool"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(policyApp, `rule: 'request.params.op == "echo"'`, "rule: '"+c.rule+"'", 1)
			_, err := deployWith(in, writeManifest(t, bad), probeModule(t))
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest ||
				!strings.Contains(apiErr.Message, "functions.guarded.triggers[0].http.rule") || !strings.Contains(apiErr.Message, c.want) {
				t.Fatalf("deploy with rule %q: %v", c.rule, err)
			}
			serving()
		})
	}

	// A public route has no identity to check.
	public := strings.Replace(policyApp, `path: "/policy/op/{op}",`, `path: "/policy/op/{op}", public: true,`, 1)
	_, err := deployWith(in, writeManifest(t, public), probeModule(t))
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Message, "public route") {
		t.Fatalf("deploy with a rule on a public route: %v", err)
	}
	serving()
}
