package capability

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/admission"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/policy"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/manifest"
)

// fakeFunctions resolves over real route tables, one per app as the
// registry builds them, and records every invocation that reaches it.
type fakeFunctions struct {
	tables map[string]*route.Table
	limits map[string]manifest.Limits
	// answer runs in place of the function; nil answers 200 "ok".
	answer func(ctx context.Context, fn string, req *sandbox.Request) (*sandbox.Response, error)
	// foreign, when set, is returned whatever is asked: a Functions that
	// forgot to scope to the caller's app.
	foreign *route.Route

	mu       sync.Mutex
	resolves int
	calls    []*sandbox.Request
	deadline []time.Time
}

func (f *fakeFunctions) Resolve(app, method, path string) (*Target, error) {
	f.mu.Lock()
	f.resolves++
	f.mu.Unlock()
	rt, params, err := f.tables[app].Match(method, path)
	if f.foreign != nil {
		rt, err = f.foreign, nil
	}
	if err != nil {
		return nil, err
	}
	return &Target{Route: rt, Params: params, Limits: f.limits[rt.Function],
		Invoke: func(ctx context.Context, req *sandbox.Request) (*sandbox.Response, error) {
			f.mu.Lock()
			f.calls = append(f.calls, req)
			dl, _ := ctx.Deadline()
			f.deadline = append(f.deadline, dl)
			f.mu.Unlock()
			if f.answer != nil {
				return f.answer(ctx, rt.Function, req)
			}
			return &sandbox.Response{Status: 200, Body: []byte("ok")}, nil
		}}, nil
}

func (f *fakeFunctions) invocations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func mustRule(t *testing.T, src string) *policy.Rule {
	t.Helper()
	r, err := policy.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newInvokeHarness is the app "diary" (the test caller's app) and an app
// "other" that has a route of the same shape, which diary must never reach.
func newInvokeHarness(t *testing.T, adjust ...func(*Config)) (*harness, *fakeFunctions) {
	t.Helper()
	diary, err := route.New([]route.Route{
		{Method: "POST", Path: "/thumbs/{id}", App: "diary", Function: "thumb", Private: true},
		{Method: "GET", Path: "/entries", App: "diary", Function: "list"},
		{Method: "POST", Path: "/ruled", App: "diary", Function: "ruled", Private: false,
			Rule: mustRule(t, `identity.scheme == "function" && identity.subject == "diary/save-entry" && request.headers["x-kind"] == ["a"]`)},
		{Method: "POST", Path: "/strict", App: "diary", Function: "strict", Rule: mustRule(t, `identity.claims.role == "admin"`)},
		{Method: "POST", Path: "/small", App: "diary", Function: "small", Private: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	other, err := route.New([]route.Route{{Method: "POST", Path: "/thumbs/{id}", App: "other", Function: "thumb", Private: true}})
	if err != nil {
		t.Fatal(err)
	}
	fns := &fakeFunctions{
		tables: map[string]*route.Table{"diary": diary, "other": other},
		limits: map[string]manifest.Limits{"small": {MaxBody: 4, MaxResponse: 8}},
	}
	return newHarness(t, func(c *Config) {
		c.Functions = fns
		for _, a := range adjust {
			a(c)
		}
	}), fns
}

func invokeGrants(fns ...string) manifest.Grants { return manifest.Grants{Invoke: fns} }

func TestInvokeCallsGrantedRoute(t *testing.T) {
	hs, fns := newInvokeHarness(t)
	fns.answer = func(_ context.Context, fn string, req *sandbox.Request) (*sandbox.Response, error) {
		return &sandbox.Response{Status: 201, Headers: map[string]string{"X-Fn": fn}, Body: append([]byte("got "), req.Body...)}, nil
	}
	c := caller(invokeGrants("thumb"))
	c.Hop = 2
	c.Origin, c.Chain = "key:uploader", []string{"upload"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	callerDeadline, _ := ctx.Deadline()
	resp, err := hs.host.Invoke(ctx, c, &sandbox.InvokeRequest{
		Method: "post", Path: "/thumbs/a%20b?size=s&size=m",
		Headers: map[string]string{"content-type": "image/png", "Connection": "close", "Host": "evil.example", "Content-Length": "1"},
		Body:    []byte("pic"),
	})
	requireErrorIs(t, err, nil)
	if resp.Status != 201 || string(resp.Body) != "got pic" || resp.Headers["X-Fn"] != "thumb" {
		t.Fatalf("response = %+v", resp)
	}
	if fns.invocations() != 1 {
		t.Fatalf("%d invocations, want 1", fns.invocations())
	}
	got := fns.calls[0]
	want := &sandbox.Request{
		Kind: sandbox.KindHTTP, RequestID: "req-0123456789", Method: "POST", Path: "/thumbs/a b",
		Params: map[string]string{"id": "a b"}, Query: map[string][]string{"size": {"s", "m"}},
		Headers:  map[string][]string{"Content-Type": {"image/png"}},
		Identity: &sandbox.Identity{Scheme: sandbox.SchemeFunction, Subject: "diary/save-entry"},
		Hop:      3, Body: []byte("pic"),
		Origin: "key:uploader", Chain: []string{"upload", "save-entry"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("callee request\n got %+v\nwant %+v", got, want)
	}
	// The callee must give up before the caller does, so the caller hears
	// why.
	if dl := fns.deadline[0]; dl.IsZero() || !dl.Before(callerDeadline) {
		t.Errorf("callee deadline %v is not before the caller's %v", dl, callerDeadline)
	}
	if n := len(security(hs.logs)); n != 0 {
		t.Errorf("an allowed call wrote %d security lines", n)
	}
	if lines := hs.logs.Messages("invoke"); len(lines) != 1 || lines[0]["route"] != "POST /thumbs/{id}" || lines[0]["resource"] != "thumb" {
		t.Errorf("invoke log lines = %v", lines)
	}
}

func TestInvokeRuleSeesTheCallingFunction(t *testing.T) {
	hs, fns := newInvokeHarness(t)
	ctx := context.Background()
	_, err := hs.host.Invoke(ctx, caller(invokeGrants("ruled")), &sandbox.InvokeRequest{Method: "POST", Path: "/ruled", Headers: map[string]string{"X-Kind": "a"}})
	requireErrorIs(t, err, nil)
	_, err = hs.host.Invoke(ctx, caller(invokeGrants("ruled")), &sandbox.InvokeRequest{Method: "POST", Path: "/ruled", Headers: map[string]string{"X-Kind": "b"}})
	requireErrorIs(t, err, aegis.ErrPermissionDenied)
	requireOneRuleDenial(t, hs.logs, "ruled", "rule false")
	if fns.invocations() != 1 {
		t.Errorf("%d invocations, want only the allowed one", fns.invocations())
	}
}

func TestInvokeRefused(t *testing.T) {
	post := func(path string) *sandbox.InvokeRequest { return &sandbox.InvokeRequest{Method: "POST", Path: path} }
	tests := []struct {
		name     string
		grants   manifest.Grants
		hop      int
		req      *sandbox.InvokeRequest
		want     error
		resource string // of the security line; "" when none is written
		resolved bool   // whether the route table was consulted
	}{
		{"no invoke grant at all", manifest.Grants{}, 0, post("/thumbs/7"), aegis.ErrPermissionDenied, "POST /thumbs/7", false},
		{"another function granted", invokeGrants("list"), 0, post("/thumbs/7"), aegis.ErrPermissionDenied, "thumb", true},
		{"no such path", invokeGrants("thumb"), 0, post("/nothing"), aegis.ErrNotFound, "", true},
		{"other method on the path", invokeGrants("thumb"), 0, &sandbox.InvokeRequest{Method: "GET", Path: "/thumbs/7"}, aegis.ErrNotFound, "", true},
		{"traversal", invokeGrants("thumb"), 0, post("/thumbs/%2e%2e"), aegis.ErrNotFound, "", true},
		{"encoded slash", invokeGrants("thumb"), 0, post("/thumbs/a%2Fb"), aegis.ErrNotFound, "", true},
		{"rule written for outside callers", invokeGrants("strict"), 0, post("/strict"), aegis.ErrPermissionDenied, "rule:strict", true},
		{"hop limit", invokeGrants("thumb"), DefaultHopLimit, post("/thumbs/7"), aegis.ErrLimitExceeded, "thumb", true},
		{"body over the callee's max_body", invokeGrants("small"), 0, &sandbox.InvokeRequest{Method: "POST", Path: "/small", Body: []byte("12345")}, aegis.ErrLimitExceeded, "", true},
		{"unsupported method", invokeGrants("thumb"), 0, &sandbox.InvokeRequest{Method: "TRACE", Path: "/thumbs/7"}, aegis.ErrInvalidArgument, "", false},
		{"relative path", invokeGrants("thumb"), 0, post("thumbs/7"), aegis.ErrInvalidArgument, "", false},
		{"absolute URL", invokeGrants("thumb"), 0, post("http://other/thumbs/7"), aegis.ErrInvalidArgument, "", false},
		{"fragment", invokeGrants("thumb"), 0, post("/thumbs/7#x"), aegis.ErrInvalidArgument, "", false},
		{"bad query", invokeGrants("thumb"), 0, post("/thumbs/7?a=%zz"), aegis.ErrInvalidArgument, "", false},
		{"path too long", invokeGrants("thumb"), 0, post("/" + strings.Repeat("a", route.MaxPathLen)), aegis.ErrInvalidArgument, "", false},
		{"nil request", invokeGrants("thumb"), 0, nil, aegis.ErrInvalidArgument, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, fns := newInvokeHarness(t)
			c := caller(tt.grants)
			c.Hop = tt.hop
			_, err := hs.host.Invoke(context.Background(), c, tt.req)
			requireErrorIs(t, err, tt.want)
			if fns.invocations() != 0 {
				t.Fatal("a refused call reached the function")
			}
			if (fns.resolves > 0) != tt.resolved {
				t.Errorf("route table consulted: %v, want %v", fns.resolves > 0, tt.resolved)
			}
			if tt.resource == "" {
				if n := len(security(hs.logs)); n != 0 {
					t.Errorf("%d security lines, want none:\n%s", n, hs.logs)
				}
				return
			}
			if fn, ok := strings.CutPrefix(tt.resource, "rule:"); ok {
				requireOneRuleDenial(t, hs.logs, fn, "rule error")
				return
			}
			requireOneDenial(t, hs.logs, "invoke", tt.resource)
		})
	}
}

// requireOneRuleDenial checks that a call the route's rule refused wrote
// exactly one security line, admission's "authorization denied" as at the
// gateway, naming the called function and the caller, and no capability
// denial besides.
func requireOneRuleDenial(t *testing.T, logs *logbuf.Buffer, function, reason string) {
	t.Helper()
	if n := len(security(logs)); n != 0 {
		t.Errorf("%d capability denials for a rule's refusal, want none:\n%s", n, logs)
	}
	lines := logs.Messages("authorization denied")
	if len(lines) != 1 {
		t.Fatalf("got %d authorization denials, want 1:\n%s", len(lines), logs)
	}
	l := lines[0]
	if l[logkey.Security] != true || l[logkey.App] != "diary" || l[logkey.Function] != function ||
		l[logkey.Caller] != "diary/save-entry" || l[logkey.RequestID] != "req-0123456789" ||
		!strings.HasPrefix(fmt.Sprint(l[logkey.Reason]), reason) {
		t.Errorf("authorization denial %v, want function %q, reason %q", l, function, reason)
	}
}

// A chain may go as deep as the limit and not one call further.
func TestInvokeHopLimitBoundary(t *testing.T) {
	hs, fns := newInvokeHarness(t)
	c := caller(invokeGrants("thumb"))
	c.Hop = DefaultHopLimit - 1
	if _, err := hs.host.Invoke(context.Background(), c, &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"}); err != nil {
		t.Fatal(err)
	}
	if fns.calls[0].Hop != DefaultHopLimit {
		t.Errorf("hop %d, want %d", fns.calls[0].Hop, DefaultHopLimit)
	}
	c.Hop = DefaultHopLimit
	_, err := hs.host.Invoke(context.Background(), c, &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
	requireErrorIs(t, err, aegis.ErrLimitExceeded)
	if !strings.Contains(err.Error(), "hop") {
		t.Errorf("message %q does not name the hop limit", err)
	}
	// The log and the error name the path, so the loop is plain to see.
	c.Chain = []string{"thumb", "save-entry", "thumb"}
	_, err = hs.host.Invoke(context.Background(), c, &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
	if want := "thumb → save-entry → thumb → save-entry → thumb"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not name the path %q", err, want)
	}
	if r := security(hs.logs)[1]["reason"]; r != "hop limit thumb → save-entry → thumb → save-entry → thumb" {
		t.Errorf("reason = %v", r)
	}
}

func TestInvokeStaysInTheCallersApp(t *testing.T) {
	hs, fns := newInvokeHarness(t)
	fns.foreign = &route.Route{Method: "POST", Path: "/thumbs/{id}", App: "other", Function: "thumb"}
	_, err := hs.host.Invoke(context.Background(), caller(invokeGrants("thumb")), &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
	requireErrorIs(t, err, aegis.ErrNotFound)
	if fns.invocations() != 0 {
		t.Fatal("a route of another app was invoked")
	}
}

func TestInvokeWithoutBackend(t *testing.T) {
	hs := newHarness(t, nil)
	_, err := hs.host.Invoke(context.Background(), caller(invokeGrants("thumb")), &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
	requireErrorIs(t, err, aegis.ErrUnavailable)
}

func TestInvokeCalleeFailures(t *testing.T) {
	tests := []struct {
		name   string
		answer func(ctx context.Context) (*sandbox.Response, error)
		want   error
		msg    string
	}{
		{"timed out", func(context.Context) (*sandbox.Response, error) {
			return nil, fmt.Errorf("invoke diary/thumb@v1: %w", sandbox.ErrTimeout)
		}, aegis.ErrLimitExceeded, "timed out"},
		{"trapped", func(context.Context) (*sandbox.Response, error) {
			return nil, fmt.Errorf("invoke diary/thumb@v1: %w: panic at /src/secret.go:12", sandbox.ErrTrap)
		}, aegis.ErrUnavailable, "function failed"},
		{"out of memory", func(context.Context) (*sandbox.Response, error) {
			return nil, fmt.Errorf("invoke diary/thumb@v1: %w", sandbox.ErrMemory)
		}, aegis.ErrUnavailable, "function failed"},
		{"response too large", func(context.Context) (*sandbox.Response, error) {
			return nil, fmt.Errorf("invoke diary/thumb@v1: %w", sandbox.ErrResponseTooLarge)
		}, aegis.ErrLimitExceeded, "response over its max_response"},
		{"busy", func(context.Context) (*sandbox.Response, error) {
			return nil, fmt.Errorf("invoke diary/thumb@v1: %w: all 1 instances busy for 5s", aegis.ErrLimitExceeded)
		}, aegis.ErrLimitExceeded, "concurrency limit"},
		{"closed", func(context.Context) (*sandbox.Response, error) {
			return nil, fmt.Errorf("invoke diary/thumb@v1: %w: function closed", aegis.ErrUnavailable)
		}, aegis.ErrUnavailable, "unavailable"},
		{"answered too much", func(context.Context) (*sandbox.Response, error) {
			return &sandbox.Response{Status: 200, Body: []byte(strings.Repeat("x", manifest.DefaultMaxResponse+1))}, nil
		}, aegis.ErrLimitExceeded, "max_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, fns := newInvokeHarness(t)
			fns.answer = func(ctx context.Context, _ string, _ *sandbox.Request) (*sandbox.Response, error) {
				return tt.answer(ctx)
			}
			_, err := hs.host.Invoke(context.Background(), caller(invokeGrants("thumb")), &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
			requireErrorIs(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "secret.go") {
				t.Errorf("message %q: want %q and no detail of the callee", err, tt.msg)
			}
		})
	}
	// The callee's own max_response is held even when the sandbox would
	// allow more.
	hs, fns := newInvokeHarness(t)
	fns.answer = func(context.Context, string, *sandbox.Request) (*sandbox.Response, error) {
		return &sandbox.Response{Body: []byte("123456789")}, nil
	}
	_, err := hs.host.Invoke(context.Background(), caller(invokeGrants("small")), &sandbox.InvokeRequest{Method: "POST", Path: "/small"})
	requireErrorIs(t, err, aegis.ErrLimitExceeded)
}

// A callee that does not answer (a full pool, a slow function) gives the
// caller an error while the caller still runs, not a hang to its deadline.
func TestInvokeEndsBeforeTheCallersDeadline(t *testing.T) {
	hs, fns := newInvokeHarness(t)
	fns.answer = func(ctx context.Context, _ string, _ *sandbox.Request) (*sandbox.Response, error) {
		<-ctx.Done() // as the sandbox does: the callee stops when its context ends
		return nil, fmt.Errorf("invoke diary/thumb@v1: %w: %w", aegis.ErrUnavailable, context.Cause(ctx))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := hs.host.Invoke(ctx, caller(invokeGrants("thumb")), &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
	if ctx.Err() != nil {
		t.Fatal("the call returned only after the caller's own deadline")
	}
	requireErrorIs(t, err, aegis.ErrLimitExceeded)
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("message %q", err)
	}

	// A caller already stopped (its client gone) is told so.
	gone, stop := context.WithCancel(context.Background())
	stop()
	_, err = hs.host.Invoke(gone, caller(invokeGrants("thumb")), &sandbox.InvokeRequest{Method: "POST", Path: "/thumbs/7"})
	requireErrorIs(t, err, aegis.ErrUnavailable)
}

func TestInvokeHeaders(t *testing.T) {
	got := invokeHeaders(map[string]string{"x-a": "2", "X-A": "1", "Transfer-Encoding": "chunked", "Upgrade": "h2c", "Accept": "*/*"})
	want := map[string][]string{"X-A": {"1", "2"}, "Accept": {"*/*"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("headers = %v, want %v", got, want)
	}
	if invokeHeaders(nil) != nil {
		t.Error("no headers should stay nil")
	}
}

func TestNewRefusesNegativeHopLimit(t *testing.T) {
	if _, err := New(Config{Logger: slog.New(slog.DiscardHandler), HopLimit: -1}); err == nil {
		t.Fatal("New with a negative hop limit succeeded")
	}
	h, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil || h.cfg.HopLimit != DefaultHopLimit {
		t.Fatalf("default hop limit: %v, %v", h, err)
	}
}

// The route's schema applies to a call as it does at the gateway: a
// request it refuses never reaches the function, and the caller gets the
// gateway's 400 (415 for a media type) as the response.
func TestInvokeChecksTheRouteSchema(t *testing.T) {
	compiled, err := schema.Compile(map[string][]byte{
		"entry.json": []byte(`{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}`),
		"id.json":    []byte(`{"type":"object","properties":{"id":{"pattern":"^[0-9]+$"}}}`),
	}, "entry.json", "id.json")
	if err != nil {
		t.Fatal(err)
	}
	check := schema.NewRequest([]string{"application/json"}, compiled["entry.json"], nil, compiled["id.json"])
	m := metrics.New()
	hs, fns := newInvokeHarness(t, func(c *Config) { c.Admission = admission.New(c.Logger, m) })
	typed, err := route.New([]route.Route{{Method: "POST", Path: "/typed/{id}", App: "diary", Function: "typed", Private: true, Schema: check}})
	if err != nil {
		t.Fatal(err)
	}
	fns.tables["diary"] = typed
	c := caller(invokeGrants("typed"))
	ct := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	for _, tt := range []struct {
		name    string
		req     *sandbox.InvokeRequest
		status  int
		message string
	}{
		{"valid", &sandbox.InvokeRequest{Method: "POST", Path: "/typed/7", Headers: ct, Body: []byte(`{"name":"x"}`)}, 200, ""},
		{"body misses a field", &sandbox.InvokeRequest{Method: "POST", Path: "/typed/7", Headers: ct, Body: []byte(`{"nom":"secret-value"}`)}, 400, "body.name: required"},
		{"param does not match", &sandbox.InvokeRequest{Method: "POST", Path: "/typed/x", Headers: ct, Body: []byte(`{"name":"x"}`)}, 400, "params.id"},
		{"media type", &sandbox.InvokeRequest{Method: "POST", Path: "/typed/7", Headers: map[string]string{"Content-Type": "text/plain"}, Body: []byte(`{"name":"x"}`)}, 415, "unsupported media type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := fns.invocations()
			resp, err := hs.host.Invoke(context.Background(), c, tt.req)
			requireErrorIs(t, err, nil)
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			ran := fns.invocations() > before
			if ran != (tt.status == 200) {
				t.Errorf("function ran: %v", ran)
			}
			if tt.status == 200 {
				return
			}
			var body map[string]string
			if err := json.Unmarshal(resp.Body, &body); err != nil || body["request_id"] != c.RequestID ||
				!strings.Contains(body["error"], tt.message) || strings.Contains(string(resp.Body), "secret-value") {
				t.Errorf("refusal body %s (%v), want the gateway's shape naming %q", resp.Body, err, tt.message)
			}
			if resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("headers %v", resp.Headers)
			}
		})
	}
	// Three refusals, counted as the gateway counts its own.
	var refused float64
	for _, kind := range []string{schema.KindBody, schema.KindParams, schema.KindContentType} {
		refused += m.SchemaViolations("diary", "typed", "POST /typed/{id}", kind)
	}
	if refused != 3 {
		t.Errorf("counted %v schema violations, want 3", refused)
	}
}
