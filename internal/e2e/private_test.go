package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// invokeReport mirrors the invoker fixture's report of one invoke call.
type invokeReport struct {
	OK      bool              `json:"ok"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Kind    string            `json:"kind"`
	Error   string            `json:"error"`
	Hop     int               `json:"hop"`
}

// whoami mirrors what the invoker answers about the request it received.
type whoami struct {
	Identity *struct {
		Scheme  string `json:"scheme"`
		Subject string `json:"subject"`
	} `json:"identity"`
	RequestID string              `json:"request_id"`
	Hop       int                 `json:"hop"`
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	Params    map[string]string   `json:"params"`
	Query     map[string][]string `json:"query"`
	Headers   map[string][]string `json:"headers"`
	Body      string              `json:"body"`
}

var (
	privateOnce sync.Once
	privateErr  error
)

// privateServer is the shared server with the private app deployed (once).
func privateServer(t *testing.T) (*instance, string) {
	t.Helper()
	in, key := sharedServer(t)
	privateOnce.Do(func() {
		_, privateErr = deployWith(in, "testdata/private.yaml", wasmbuild.GoModule(t, "testdata/invoker"))
	})
	if privateErr != nil {
		t.Fatalf("deploy the private app: %v", privateErr)
	}
	return in, key
}

// invokeVia asks function fn of the private app to invoke the route spec
// describes, and returns its report and the outer request's id.
func invokeVia(t *testing.T, in *instance, key, fn string, spec map[string]any) (invokeReport, string) {
	t.Helper()
	st, body, hdr := call(t, in.gateway, "POST", "/private-e2e/"+fn+"/call", key, spec)
	if st != 200 {
		t.Fatalf("%s/call: %d %s", fn, st, body)
	}
	var r invokeReport
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s/call: %v: %s", fn, err, body)
	}
	return r, hdr.Get("X-Request-Id")
}

// TestPrivateRouteFromOutside: a private route called through the gateway
// answers exactly what a route nobody declared answers, with or without a
// key, and a 405 on a path it shares never lists its method.
func TestPrivateRouteFromOutside(t *testing.T) {
	in, key := privateServer(t)

	// What a route that does not exist looks like, to compare against.
	type answer struct {
		status int
		msg    string
		fields []string
		ctype  string
		allow  string
		names  []string // response header names, minus those that vary
	}
	look := func(method, path, key string) answer {
		t.Helper()
		st, body, hdr := call(t, in.gateway, method, path, key, map[string]string{"x": "y"})
		msg, id := errorBody(t, body)
		if id != hdr.Get("X-Request-Id") {
			t.Errorf("%s %s: body request_id %q, header %q", method, path, id, hdr.Get("X-Request-Id"))
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		var fields, names []string
		for k := range m {
			fields = append(fields, k)
		}
		for k := range hdr {
			if k != "Date" && k != "Content-Length" {
				names = append(names, k)
			}
		}
		slices.Sort(fields)
		slices.Sort(names)
		return answer{st, msg, fields, hdr.Get("Content-Type"), hdr.Get("Allow"), names}
	}
	same := func(name string, got, want answer) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got  %+v\n want %+v (as for a route that does not exist)", name, got, want)
		}
	}

	missing := look("POST", "/private-e2e/nothing/whoami", key)
	if missing.status != http.StatusNotFound {
		t.Fatalf("undeclared route: %+v", missing)
	}
	same("private route with a key", look("POST", "/private-e2e/back/whoami", key), missing)
	same("private route without a key", look("POST", "/private-e2e/back/whoami", ""), look("POST", "/private-e2e/nothing/whoami", ""))
	same("private route, other method", look("GET", "/private-e2e/ping/loop", key), look("GET", "/private-e2e/nothing/loop", key))

	// /private-e2e/doc: GET is front's, PUT is back's private route. PUT
	// from outside is a 405 like any undeclared method, and no 405 lists
	// PUT.
	undeclared := look("DELETE", "/private-e2e/doc", key)
	if undeclared.status != http.StatusMethodNotAllowed || undeclared.allow != "GET, HEAD" {
		t.Fatalf("DELETE on a shared path: %+v, want 405 allowing GET, HEAD", undeclared)
	}
	same("PUT on the shared path", look("PUT", "/private-e2e/doc", key), undeclared)

	// The caller learns nothing, but the log does: probing an internal
	// path is worth an operator's attention.
	if lines := in.logs.Lines("private route called from outside", `"path":"/private-e2e/back/{op}"`); len(lines) == 0 {
		t.Errorf("no security log line for a private route called from outside")
	} else if lines[0]["security"] != true || lines[0]["function"] != "back" {
		t.Errorf("log line: %v", lines[0])
	}
	if lines := in.logs.Lines("private route called from outside", `"method":"GET","path":"/private-e2e/ping/{op}"`); len(lines) != 0 {
		t.Errorf("a method no private route has is logged as a probe: %v", lines)
	}

	// Nothing ran: a private route from outside never reaches a function.
	if lines := in.logs.Lines(`"msg":"invocation failed"`, `"app":"private"`); len(lines) != 0 {
		t.Errorf("an outside request reached a function of the app: %v", lines)
	}
}

func TestPrivateInvoke(t *testing.T) {
	in, key := privateServer(t)

	t.Run("front calls back's private route", func(t *testing.T) {
		rep, reqID := invokeVia(t, in, key, "front", map[string]any{
			"method": "POST", "path": "/private-e2e/back/whoami?q=1&q=2",
			"headers": map[string]string{"X-Custom": "c", "Content-Type": "text/plain"}, "body": "hello",
		})
		if !rep.OK || rep.Status != 203 || rep.Headers["X-Back"] != "seen" {
			t.Fatalf("report %+v", rep)
		}
		var who whoami
		if err := json.Unmarshal([]byte(rep.Body), &who); err != nil {
			t.Fatalf("%v: %s", err, rep.Body)
		}
		if who.Identity == nil || who.Identity.Scheme != "function" || who.Identity.Subject != "private/front" {
			t.Errorf("back sees identity %+v, want function private/front", who.Identity)
		}
		if who.RequestID == "" || who.RequestID != reqID {
			t.Errorf("back sees request id %q, the outer request had %q", who.RequestID, reqID)
		}
		if who.Hop != 1 || who.Method != "POST" || who.Path != "/private-e2e/back/whoami" || who.Params["op"] != "whoami" ||
			!slices.Equal(who.Query["q"], []string{"1", "2"}) || who.Body != "hello" ||
			!slices.Equal(who.Headers["X-Custom"], []string{"c"}) {
			t.Errorf("back received %+v", who)
		}
		// The callee's invocation is recorded under the caller's request id.
		eventually(t, 15*time.Second, "back's invocation record", func() bool {
			return len(invocationRecords(t, in, "back", reqID)) == 1
		})
	})

	t.Run("a private route of a shared path", func(t *testing.T) {
		rep, _ := invokeVia(t, in, key, "front", map[string]any{"method": "PUT", "path": "/private-e2e/doc"})
		var who whoami
		_ = json.Unmarshal([]byte(rep.Body), &who)
		if !rep.OK || who.Method != "PUT" || who.Identity == nil || who.Identity.Subject != "private/front" {
			t.Errorf("PUT /private-e2e/doc through invoke: %+v", rep)
		}
	})

	t.Run("rogue is denied", func(t *testing.T) {
		rep, reqID := invokeVia(t, in, key, "rogue", map[string]any{"method": "POST", "path": "/private-e2e/back/whoami"})
		if rep.OK || rep.Kind != "permission_denied" {
			t.Fatalf("rogue → back: %+v, want permission denied", rep)
		}
		lines := in.logs.Lines(`"capability denied"`, reqID)
		if len(lines) != 1 {
			t.Fatalf("%d security lines for the denial, want 1", len(lines))
		}
		l := lines[0]
		if l["security"] != true || l["capability"] != "invoke" || l["app"] != "private" || l["function"] != "rogue" || l["resource"] != "back" {
			t.Errorf("security line %v", l)
		}
		if n := len(invocationRecords(t, in, "back", reqID)); n != 0 {
			t.Errorf("back ran %d times for a denied call", n)
		}
		// What rogue is granted, it may call, and front sees rogue as caller.
		rep, _ = invokeVia(t, in, key, "rogue", map[string]any{"method": "POST", "path": "/private-e2e/front/whoami"})
		var who whoami
		_ = json.Unmarshal([]byte(rep.Body), &who)
		if !rep.OK || who.Identity == nil || who.Identity.Subject != "private/rogue" {
			t.Errorf("rogue → front: %+v", rep)
		}
	})

	t.Run("a path that does not exist", func(t *testing.T) {
		rep, reqID := invokeVia(t, in, key, "front", map[string]any{"method": "POST", "path": "/private-e2e/nothing/whoami"})
		if rep.OK || rep.Kind != "not_found" {
			t.Fatalf("report %+v, want not found", rep)
		}
		// Another app's route is not this app's: the probe app's public
		// route does not exist for front either.
		rep, _ = invokeVia(t, in, key, "front", map[string]any{"method": "GET", "path": "/public/calls"})
		if rep.OK || rep.Kind != "not_found" {
			t.Errorf("another app's route: %+v, want not found", rep)
		}
		if lines := in.logs.Lines(`"capability denied"`, reqID); len(lines) != 0 {
			t.Errorf("a missing route wrote a security line: %v", lines)
		}
	})

	t.Run("limits of the callee", func(t *testing.T) {
		rep, _ := invokeVia(t, in, key, "front", map[string]any{"method": "POST", "path": "/private-e2e/back/whoami", "body": strings.Repeat("x", 2<<10)})
		if rep.OK || rep.Kind != "limit_exceeded" || !strings.Contains(rep.Error, "max_body") {
			t.Errorf("body over back's max_body: %+v", rep)
		}
		rep, _ = invokeVia(t, in, key, "front", map[string]any{"method": "POST", "path": "/private-e2e/back/big"})
		if rep.OK || rep.Kind != "limit_exceeded" || !strings.Contains(rep.Error, "max_response") {
			t.Errorf("response over back's max_response: %+v", rep)
		}
	})

	t.Run("a loop stops at the hop limit", func(t *testing.T) {
		start := time.Now()
		rep, reqID := invokeVia(t, in, key, "front", map[string]any{"method": "POST", "path": "/private-e2e/ping/loop"})
		if !rep.OK {
			t.Fatalf("front → ping: %+v", rep)
		}
		var deepest invokeReport
		if err := json.Unmarshal([]byte(rep.Body), &deepest); err != nil {
			t.Fatalf("%v: %s", err, rep.Body)
		}
		if deepest.OK || deepest.Kind != "limit_exceeded" || deepest.Hop != bus.DefaultHopLimit || !strings.Contains(deepest.Error, "hop") {
			t.Fatalf("the deepest call: %+v, want a hop limit error at hop %d", deepest, bus.DefaultHopLimit)
		}
		// front may run 20s (room for a loaded machine): the loop ended by
		// the hop limit, well before anyone's timeout.
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the loop took %s to stop", d)
		}
		// The line names the path the calls took.
		lines := in.logs.Lines(`"capability denied"`, `"reason":"hop limit front → ping → pong → ping → pong`, reqID)
		if len(lines) != 1 || lines[0]["function"] != "pong" {
			t.Errorf("security lines for the stopped loop: %v", lines)
		}
		// Every hop ran once, each recorded with the request id of the chain.
		eventually(t, 15*time.Second, "16 invocation records", func() bool {
			return len(invocationRecords(t, in, "ping", reqID))+len(invocationRecords(t, in, "pong", reqID)) == bus.DefaultHopLimit
		})
	})

	t.Run("a busy callee answers the caller in time", func(t *testing.T) {
		// The admin API holds busy's only instance for 6s; rogue (timeout
		// 2s) then calls busy and must hear "at its concurrency limit"
		// within its own timeout, not wait for the instance.
		nonce := fmt.Sprintf("%d", time.Now().UnixNano())
		held := make(chan error, 1)
		go func() {
			_, err := in.admin.Invoke(context.Background(), "private", "busy", []byte("sleep:"+nonce))
			held <- err
		}()
		eventually(t, 10*time.Second, "busy to be held", func() bool {
			found := false
			_ = in.admin.Logs(context.Background(), client.LogQuery{App: "private", Function: "busy", Limit: 100}, func(r client.LogRecord) error {
				found = found || r.Msg == "holding "+nonce
				return nil
			})
			return found
		})
		start := time.Now()
		rep, _ := invokeVia(t, in, key, "rogue", map[string]any{"method": "POST", "path": "/private-e2e/busy/whoami"})
		elapsed := time.Since(start)
		if rep.OK || rep.Kind != "limit_exceeded" || !strings.Contains(rep.Error, "concurrency limit") {
			t.Errorf("rogue → busy while busy is held: %+v", rep)
		}
		if elapsed > 5*time.Second {
			t.Errorf("the caller waited %s for a busy callee", elapsed)
		}
		if err := <-held; err != nil {
			t.Errorf("admin invoke of busy: %v", err)
		}
	})

	// The admin API is an authenticated operator tool: it may run any
	// function, a private one too (docs/security.md).
	t.Run("the admin API may invoke a private function", func(t *testing.T) {
		res, err := in.admin.Invoke(context.Background(), "private", "back", []byte("hi"))
		if err != nil || res.Status != 203 {
			t.Fatalf("admin invoke of back: %+v, %v", res, err)
		}
	})

	t.Run("the routes listing marks private routes", func(t *testing.T) {
		req, _ := http.NewRequest("GET", in.srv.AdminURL()+"/v1/routes", nil)
		req.Header.Set("Authorization", "Bearer "+in.srv.AdminToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var routes []struct {
			Method, Path, App, Function string
			Private                     bool
		}
		if err := json.NewDecoder(resp.Body).Decode(&routes); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range routes {
			if r.App == "private" {
				got[r.Method+" "+r.Path] = r.Private
			}
		}
		want := map[string]bool{
			"POST /private-e2e/front/{op}": false, "GET /private-e2e/doc": false, "PUT /private-e2e/doc": true,
			"POST /private-e2e/back/{op}": true, "POST /private-e2e/ping/{op}": true,
		}
		for k, v := range want {
			if p, ok := got[k]; !ok || p != v {
				t.Errorf("route %s: listed %v, private %v; want private %v", k, ok, p, v)
			}
		}
	})
}

// invocationRecords returns the invocation records of a function of the
// private app made under reqID.
func invocationRecords(t *testing.T, in *instance, fn, reqID string) []client.LogRecord {
	t.Helper()
	var out []client.LogRecord
	err := in.admin.Logs(context.Background(), client.LogQuery{App: "private", Function: fn, Limit: 2000}, func(r client.LogRecord) error {
		if r.RequestID == reqID && (r.Msg == "invocation" || r.Msg == "invocation failed") {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
