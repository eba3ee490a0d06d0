package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestAuthenticationDeniedByDefault(t *testing.T) {
	in, key := sharedServer(t)
	ctx := context.Background()
	revoked, err := in.admin.CreateKey(ctx, "soon-revoked")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", revoked.Key, "x"); st != 200 {
		t.Fatalf("key before revocation: status %d", st)
	}
	if err := in.admin.RevokeKey(ctx, "soon-revoked"); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, key string }{
		{"no key", ""},
		{"wrong key", "aegis_notarealkey_notarealsecret"},
		{"tampered key", key[:len(key)-2] + "xx"},
		{"revoked key", revoked.Key},
	}
	var bodies []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, hdr := call(t, in.gateway, "POST", "/probe/echo", c.key, "x")
			if st != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (%s)", st, body)
			}
			msg, id := errorBody(t, body)
			if msg != "unauthorized" {
				t.Errorf("message %q says more than unauthorized", msg)
			}
			if hdr.Get("X-Request-Id") != id {
				t.Errorf("request id header %q differs from body %q", hdr.Get("X-Request-Id"), id)
			}
			bodies = append(bodies, strings.Replace(string(body), id, "ID", 1))
			if len(in.logs.Lines("authentication failed", id)) != 1 {
				t.Errorf("no security log line for request %s", id)
			}
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ, so they reveal why: %q vs %q", b, bodies[0])
		}
	}
	if lines := in.logs.Lines("authentication failed", `"reason":"revoked"`); len(lines) == 0 {
		t.Errorf("the log does not say the key was revoked")
	}
}

func TestUndeclaredRoutesDoNotExist(t *testing.T) {
	in, key := sharedServer(t)
	st, body, _ := call(t, in.gateway, "GET", "/nowhere", key, nil)
	if st != http.StatusNotFound {
		t.Fatalf("undeclared route: %d", st)
	}
	errorBody(t, body)
	st, body, hdr := call(t, in.gateway, "DELETE", "/probe/echo", key, nil)
	if st != http.StatusMethodNotAllowed || hdr.Get("Allow") != "POST" {
		t.Fatalf("wrong method: %d allow=%q %s", st, hdr.Get("Allow"), body)
	}
	// A public route answers without a key.
	if st, body, _ := call(t, in.gateway, "GET", "/public/calls", "", nil); st != 200 {
		t.Fatalf("public route: %d %s", st, body)
	}
}

func TestFunctionsNeverSeeTheCallersKey(t *testing.T) {
	in, key := sharedServer(t)
	_, body, _ := call(t, in.gateway, "POST", "/probe/headers", key, "{}")
	if strings.Contains(string(body), key) || strings.Contains(string(body), "Authorization") {
		t.Fatalf("the function saw the API key: %s", body)
	}
}

// A header a function sends twice reaches the client as two header lines,
// through the gateway and through an admin invoke alike.
func TestHeaderSentTwice(t *testing.T) {
	in, key := sharedServer(t)
	st, body, hdr := call(t, in.gateway, "POST", "/probe/cookies", key, "{}")
	want := []string{"a=1; Path=/", "b=2; Path=/"}
	if st != 200 || !slices.Equal(hdr.Values("Set-Cookie"), want) {
		t.Errorf("gateway: %d %s, Set-Cookie %q, want %q", st, body, hdr.Values("Set-Cookie"), want)
	}
	st, body, hdr = call(t, in.srv.AdminURL(), "POST", "/v1/apps/probe/functions/probe/invoke", in.srv.AdminToken(), map[string]string{"op": "cookies"})
	if st != 200 || !slices.Equal(hdr.Values("Set-Cookie"), want) {
		t.Errorf("admin invoke: %d %s, Set-Cookie %q, want %q", st, body, hdr.Values("Set-Cookie"), want)
	}
}

func TestGrantsAreEnforcedByTheSandbox(t *testing.T) {
	in, key := sharedServer(t)
	allowed := []struct {
		op string
		in map[string]any
	}{
		{"kv-put", map[string]any{"table": "allowed", "key": "k1", "value": "v1"}},
		{"obj-put", map[string]any{"key": "ok/file.txt", "value": "hello"}},
		{"publish", map[string]any{"topic": "ok.topic", "value": "{}"}},
	}
	for _, c := range allowed {
		if o, _ := probe(t, in.gateway, key, "probe", c.op, c.in); !o.OK {
			t.Errorf("granted %s refused: %s", c.op, o.Error)
		}
	}
	if o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "allowed", "key": "k1"}); o.Value != "v1" {
		t.Errorf("kv read back %q", o.Value)
	}
	denied := []struct {
		name, op, capability, resource string
		in                             map[string]any
	}{
		{"ungranted table", "kv-get", "kv.get", "secrets", map[string]any{"table": "secrets", "key": "k"}},
		{"ungranted table write", "kv-put", "kv.put", "secrets", map[string]any{"table": "secrets", "key": "k", "value": "x"}},
		{"ungranted prefix", "obj-put", "objects.put", "private/x", map[string]any{"key": "private/x", "value": "x"}},
		{"ungranted prefix read", "obj-get", "objects.get", "thumbs/x", map[string]any{"key": "thumbs/x"}},
		{"ungranted topic", "publish", "events.publish", "other.topic", map[string]any{"topic": "other.topic", "value": "{}"}},
		{"ungranted host", "fetch", "fetch", "api.elsewhere.test", map[string]any{"url": "http://api.elsewhere.test/"}},
	}
	for _, c := range denied {
		t.Run(c.name, func(t *testing.T) {
			o, reqID := probe(t, in.gateway, key, "probe", c.op, c.in)
			if o.OK || !o.Denied {
				t.Fatalf("got %+v, want a permission error in the guest", o)
			}
			lines := in.logs.Lines("capability denied", reqID)
			if len(lines) != 1 {
				t.Fatalf("want one security log line for request %s, got %d", reqID, len(lines))
			}
			l := lines[0]
			if l["function"] != "probe" || l["capability"] != c.capability || !strings.Contains(l["resource"].(string), c.resource) {
				t.Errorf("security line does not name function, capability and resource: %v", l)
			}
		})
	}
}

func TestObjectKeyTraversalRefused(t *testing.T) {
	in, key := sharedServer(t)
	for _, k := range []string{"ok/../private/x", "../ok/x", "/ok/x"} {
		o, _ := probe(t, in.gateway, key, "probe", "obj-put", map[string]any{"key": k, "value": "x"})
		if o.OK {
			t.Errorf("object key %q accepted", k)
		}
	}
}

func TestEgressFilter(t *testing.T) {
	in, key := sharedServer(t)
	defer in.egress.check(t)
	// Every one of these must be refused before any dial: the guard records
	// any attempt instead of connecting.
	for _, url := range []string{
		"http://127.0.0.1/",
		"http://10.0.0.1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://local.example.test/",
		"http://private.example.test/",
		"http://meta.example.test/latest/meta-data/",
		"file:///etc/passwd",
	} {
		o, _ := probe(t, in.gateway, key, "probe", "fetch", map[string]any{"url": url})
		if o.OK {
			t.Errorf("fetch %s allowed", url)
		}
	}

	// An explicit IP grant reaches a loopback server, through the guard.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("pong"))
	}))
	defer ts.Close()
	in.egress.allow(strings.TrimPrefix(ts.URL, "http://"))
	o, _ := probe(t, in.gateway, key, "fetcher", "fetch", map[string]any{"url": ts.URL + "/ping"})
	if !o.OK || o.Status != 200 || o.Value != "pong" {
		t.Fatalf("granted fetch: %+v", o)
	}
}

func TestSandboxSeesNoHost(t *testing.T) {
	in, key := sharedServer(t)
	st, body, _ := call(t, in.gateway, "POST", "/probe/sandbox", key, "{}")
	var got struct {
		Env  []string
		Args []string
		FS   bool
	}
	if st != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("%d %s", st, body)
	}
	if len(got.Env) != 0 || len(got.Args) > 1 || got.FS {
		t.Errorf("the module sees the host: env=%v args=%v filesystem=%v", got.Env, got.Args, got.FS)
	}
}
