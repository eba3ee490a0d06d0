//go:build !aegis_wazero

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
	"github.com/aegis-platform/aegis/manifest"
)

// jsProbe is testdata/jsprobe built once per run with componentize-js.
func jsProbe(t testing.TB) []byte {
	t.Helper()
	return wasmbuild.JSComponent(t, "testdata/jsprobe")
}

func componentReq(method, path string, body string) *Request {
	return &Request{Kind: KindHTTP, RequestID: "req-" + path, Method: method, Path: path, Body: []byte(body)}
}

// TestComponentServesRequests: a JavaScript component answers through
// Aegis's wasi:http host: method, path, query, headers and body in; status,
// headers (a header sent twice stays two lines) and body out.
func TestComponentServesRequests(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{})

	resp := mustInvoke(t, f, componentReq("GET", "/hello", ""))
	if resp.Status != 200 || string(resp.Body) != "hello from a component" {
		t.Fatalf("hello: %d %q", resp.Status, resp.Body)
	}
	if ct := resp.Headers["content-type"]; ct != "text/plain" {
		t.Errorf("content-type %q", ct)
	}
	resp = mustInvoke(t, f, componentReq("POST", "/echo", "a body"))
	if string(resp.Body) != "a body" || resp.Headers["x-method"] != "POST" {
		t.Errorf("echo: %q %v", resp.Body, resp.Headers)
	}
	req := componentReq("GET", "/query", "")
	req.Query = map[string][]string{"q": {"a b"}}
	if resp = mustInvoke(t, f, req); string(resp.Body) != "a b" {
		t.Errorf("query: %q", resp.Body)
	}
	resp = mustInvoke(t, f, componentReq("GET", "/cookies", ""))
	if got := FieldLines(resp.Headers["set-cookie"]); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("set-cookie lines %q", got)
	}
	resp = mustInvoke(t, f, componentReq("GET", "/nothing", ""))
	if resp.Status != 404 {
		t.Errorf("unknown path: %d", resp.Status)
	}
}

// TestComponentSeesOnlyPlatformHeaders: aegis-* headers a client sent are
// dropped, the platform's own (request id, verified identity) are there.
func TestComponentSeesOnlyPlatformHeaders(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{})
	req := componentReq("GET", "/headers", "")
	req.Headers = map[string][]string{"Aegis-Identity": {`{"scheme":"api-key","subject":"forged"}`}, "X-Client": {"yes"}}
	req.Identity = &Identity{Scheme: "api-key", Subject: "ci"}
	resp := mustInvoke(t, f, req)
	var seen map[string]string
	if err := json.Unmarshal(resp.Body, &seen); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	if seen["x-client"] != "yes" || seen["aegis-request-id"] != "req-/headers" {
		t.Errorf("headers seen: %v", seen)
	}
	if !strings.Contains(seen["aegis-identity"], `"subject":"ci"`) || strings.Contains(seen["aegis-identity"], "forged") {
		t.Errorf("identity seen: %q", seen["aegis-identity"])
	}
}

// TestComponentCapabilities: aegis:platform calls go to the Host with the
// function's caller; a table outside the grants is refused with the
// denied case, and the refusal is what the Host said.
func TestComponentCapabilities(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{App: "app", Function: "js", Version: "v1"})
	if resp := mustInvoke(t, f, componentReq("PUT", "/kv/k1", "remember me")); resp.Status != 201 {
		t.Fatalf("put: %d %s", resp.Status, resp.Body)
	}
	if resp := mustInvoke(t, f, componentReq("GET", "/kv/k1", "")); string(resp.Body) != "remember me" {
		t.Errorf("get: %d %q", resp.Status, resp.Body)
	}
	if resp := mustInvoke(t, f, componentReq("GET", "/kv/absent", "")); resp.Status != 404 {
		t.Errorf("absent key: %d %q", resp.Status, resp.Body)
	}
	resp := mustInvoke(t, f, componentReq("GET", "/denied", ""))
	if resp.Status != 403 || !strings.HasPrefix(string(resp.Body), "denied: ") {
		t.Errorf("table outside the grants: %d %q", resp.Status, resp.Body)
	}
	if resp = mustInvoke(t, f, componentReq("PUT", "/object/photos/a.jpg", "jpeg")); resp.Status != 201 {
		t.Errorf("object put: %d %q", resp.Status, resp.Body)
	}
	if resp = mustInvoke(t, f, componentReq("GET", "/object/photos/a.jpg", "")); string(resp.Body) != "jpeg" {
		t.Errorf("object get: %d %q", resp.Status, resp.Body)
	}
	if resp = mustInvoke(t, f, componentReq("POST", "/publish", `{"id":1}`)); resp.Status != 202 {
		t.Errorf("publish: %d %q", resp.Status, resp.Body)
	}
	if pub := env.host.published; len(pub) != 1 || pub[0] != `orders:{"id":1}` {
		t.Errorf("published %q", pub)
	}
	if resp = mustInvoke(t, f, componentReq("GET", "/invoke/other", "")); string(resp.Body) != "203 back POST /other:ping" {
		t.Errorf("invoke: %d %q", resp.Status, resp.Body)
	}
	if inv := env.host.invokes; len(inv) != 1 || inv[0].Headers["x-from"] != "probe" {
		t.Errorf("invokes %+v", inv)
	}
	if resp = mustInvoke(t, f, componentReq("GET", "/invoke/nope", "")); resp.Status != 403 || !strings.HasPrefix(string(resp.Body), "denied: ") {
		t.Errorf("invoke outside the grants: %d %q", resp.Status, resp.Body)
	}
	if resp = mustInvoke(t, f, componentReq("GET", "/secret/TOKEN", "")); string(resp.Body) != fmt.Sprintf("%d bytes", len(recorderSecrets["TOKEN"])) {
		t.Errorf("secret: %d %q", resp.Status, resp.Body)
	}
	if resp = mustInvoke(t, f, componentReq("GET", "/secret/NOPE", "")); string(resp.Body) != "none" {
		t.Errorf("absent secret: %d %q", resp.Status, resp.Body)
	}
	mustInvoke(t, f, componentReq("GET", "/secret-log", ""))
	scrubbed := false
	for _, l := range env.host.logLines() {
		if strings.Contains(l.Msg, recorderSecrets["TOKEN"]) {
			t.Errorf("a secret's value reached the log: %q", l.Msg)
		}
		scrubbed = scrubbed || l.Msg == "the token is [secret TOKEN]"
	}
	if !scrubbed {
		t.Errorf("no scrubbed line among %v", env.host.logLines())
	}
	for _, c := range env.host.callers {
		if c.App != "app" || c.Function != "js" || c.Version != "v1" || c.RequestID == "" {
			t.Errorf("a host call's caller: %+v", c)
			break
		}
	}
	resp = mustInvoke(t, f, componentReq("GET", "/log", ""))
	if resp.Status != 200 {
		t.Fatalf("log: %d", resp.Status)
	}
	var logs []string
	for _, l := range env.host.logLines() {
		logs = append(logs, l.Msg)
	}
	for _, want := range []string{"a line on stdout", "a line on stderr", "a line through the platform log"} {
		if !slices.Contains(logs, want) {
			t.Errorf("log lines %q lack %q", logs, want)
		}
	}
}

// TestComponentFetchGoesThroughTheHost: outgoing-handler is the fetch
// capability: the Host decides, and its refusal reaches the guest as an
// error (JavaScript's fetch throws).
func TestComponentFetchGoesThroughTheHost(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{})
	req := componentReq("GET", "/fetch", "")
	req.Query = map[string][]string{"url": {"https://api.example.test/ok?x=1"}}
	if resp := mustInvoke(t, f, req); resp.Status != 201 || string(resp.Body) != "pong:" {
		t.Errorf("granted fetch: %d %q", resp.Status, resp.Body)
	}
	if fs := env.host.fetches; len(fs) != 1 || fs[0].URL != "https://api.example.test/ok?x=1" || fs[0].Method != "GET" {
		t.Errorf("fetches %+v", fs)
	}
	req.Query = map[string][]string{"url": {"https://forbidden.example.test/"}}
	if resp := mustInvoke(t, f, req); resp.Status != 502 || !strings.Contains(string(resp.Body), "fetch failed") {
		t.Errorf("refused fetch: %d %q", resp.Status, resp.Body)
	}
}

// TestComponentTimers: a guest's timers wait as long as they say, and a
// poll over a ready pollable and a timer returns at once.
func TestComponentTimers(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{})
	resp := mustInvoke(t, f, componentReq("GET", "/sleep/200", ""))
	if ms, err := strconv.Atoi(string(resp.Body)); err != nil || ms < 190 || ms > 2000 {
		t.Errorf("a 200 ms timer took %q ms", resp.Body)
	}
	for _, order := range []string{"fetch-first", "timer-first"} {
		start := time.Now()
		resp = mustInvoke(t, f, componentReq("GET", "/race/"+order, ""))
		if string(resp.Body) != "fetch" || time.Since(start) > 2*time.Second {
			t.Errorf("%s: fetch against a 3 s timer: %q after %s", order, resp.Body, time.Since(start))
		}
	}
}

// TestComponentContainment: a component is held to the same limits as a
// module: its timeout stops a busy loop, its response cap and memory limit
// fail the invocation, a throw is a trap, and the function serves again.
func TestComponentContainment(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{Limits: manifest.Limits{
		Timeout: manifest.Duration(time.Second), MaxResponse: 1 << 20, Memory: 256 << 20}})
	start := time.Now()
	_, err := f.Invoke(context.Background(), componentReq("GET", "/spin", ""))
	requireErrorIs(t, err, ErrTimeout)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("busy loop stopped after %s, timeout 1s", took)
	}
	_, err = f.Invoke(context.Background(), componentReq("GET", "/big?n=2000000", ""))
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("2 MB answer with a 1 MiB cap: %v", err)
	}
	big := componentReq("GET", "/big", "")
	big.Query = map[string][]string{"n": {"1000"}}
	if resp := mustInvoke(t, f, big); len(resp.Body) != 1000 {
		t.Errorf("1000-byte answer: %d bytes", len(resp.Body))
	}
	// The runtime starts with about 10 MB; 32 MiB is reached in a few
	// arrays, long before the timeout.
	small := env.function(t, jsProbe(t), FunctionConfig{App: "app", Function: "small", Version: "v1",
		Limits: manifest.Limits{Timeout: manifest.Duration(10 * time.Second), Memory: 32 << 20}})
	_, err = small.Invoke(context.Background(), componentReq("GET", "/alloc", ""))
	requireErrorIs(t, err, ErrMemory)
	if resp := mustInvoke(t, small, componentReq("GET", "/hello", "")); resp.Status != 200 {
		t.Errorf("after running out of memory: %d", resp.Status)
	}
	// StarlingMonkey turns an exception in the handler into a 500 and
	// prints it to stderr, which is the function's log.
	resp, err := f.Invoke(context.Background(), componentReq("GET", "/throw", ""))
	if err == nil && resp.Status != 500 {
		t.Errorf("a throwing handler answered %d %q", resp.Status, resp.Body)
	}
	var logged bool
	for _, l := range env.host.logLines() {
		logged = logged || strings.Contains(l.Msg, "the handler failed on purpose")
	}
	if !logged {
		t.Error("the exception is not in the function's log")
	}
	if resp = mustInvoke(t, f, componentReq("GET", "/hello", "")); resp.Status != 200 {
		t.Errorf("after the failures: %d", resp.Status)
	}
}

// TestComponentEvents: an event reaches a component as a POST with the
// aegis-kind and aegis-topic headers.
func TestComponentEvents(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, jsProbe(t), FunctionConfig{})
	// The probe answers events on /event; an event's path is "/", so
	// check the shape incomingFrom builds, then one the probe reads.
	in := incomingFrom(&Request{Kind: KindEvent, Topic: "orders", Body: []byte("{}"), Attempt: 2})
	if in.method != "POST" || in.pathQuery != "/" {
		t.Errorf("event request %s %s", in.method, in.pathQuery)
	}
	var kinds []string
	for i, n := range in.headers.names {
		kinds = append(kinds, n+"="+string(in.headers.values[i]))
	}
	if got := strings.Join(kinds, " "); !strings.Contains(got, "aegis-kind=event") || !strings.Contains(got, "aegis-topic=orders") || !strings.Contains(got, "aegis-attempt=2") {
		t.Errorf("event headers %s", got)
	}
	req := componentReq("POST", "/event", "payload")
	req.Headers = map[string][]string{"Aegis-Kind": {"forged"}}
	if resp := mustInvoke(t, f, req); string(resp.Body) != "null null payload" {
		t.Errorf("forged aegis-kind reached the function: %q", resp.Body)
	}
}

// TestComponentImportsCheckedAtDeploy: a component importing an interface
// Aegis does not provide is refused at compile, the interface named; one
// that does not export wasi:http/incoming-handler is refused as well.
func TestComponentImportsCheckedAtDeploy(t *testing.T) {
	env := newEnv(t)
	probe := jsProbe(t)
	// The same component, its import of the platform's log renamed (same
	// length, so the binary stays well formed) to an interface nobody
	// provides.
	unknown := bytes.ReplaceAll(probe, []byte("aegis:platform/log@0.1.0"), []byte("acmeco:storage/bus@0.1.0"))
	if bytes.Equal(unknown, probe) {
		t.Fatal("the probe does not import aegis:platform/log")
	}
	_, err := env.engine.Compile(context.Background(), unknown)
	requireErrorIs(t, err, ErrUnknownImport)
	if !strings.Contains(err.Error(), "acmeco:storage/bus@0.1.0") {
		t.Errorf("refusal does not name the import: %v", err)
	}
	noHandler := bytes.ReplaceAll(probe, []byte("wasi:http/incoming-handler@0.2.10"), []byte("wasi:http/incoming-handlex@0.2.10"))
	_, err = env.engine.Compile(context.Background(), noHandler)
	requireErrorIs(t, err, ErrInvalidModule)
	if !strings.Contains(err.Error(), "does not export wasi:http/incoming-handler") {
		t.Errorf("refusal of a component without the handler: %v", err)
	}
	m, err := env.engine.Compile(context.Background(), probe)
	if err != nil {
		t.Fatal(err)
	}
	// componentize-js imports the whole world it is built against, so
	// every capability is listed; advice then rests on observed edges.
	if got := m.HostImports(); !slices.Contains(got, "kv_get") || !slices.Contains(got, "fetch") || slices.Contains(got, "request_meta_len") {
		t.Errorf("host imports %v, want the capabilities in the ABI's names", got)
	}
	if m.Style() != StyleComponent {
		t.Errorf("style %s", m.Style())
	}
}

// FuzzBindComponent: whatever bytes a deploy brings as a component, reading
// its imports and exports returns a component or an error, never a panic.
func FuzzBindComponent(f *testing.F) {
	f.Add([]byte("\x00asm\x0d\x00\x01\x00"))
	f.Add([]byte("\x00asm\x0d\x00\x01\x00\x0a\x05\x01\x00\x01a\x05"))
	f.Add([]byte("\x00asm\x0d\x00\x01\x00\x01\x08\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cm, err := bindComponent(b)
		if err == nil && cm.handler == "" {
			t.Fatal("bound a component without its handler")
		}
	})
}
