package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
	"github.com/aegis-platform/aegis/manifest"
)

func TestEchoRoundTrip(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "echo", FunctionConfig{})
	if got := f.module.Style(); got != StyleReactor {
		t.Fatalf("style = %v, want reactor", got)
	}
	req := &Request{
		Kind: KindHTTP, RequestID: "r1", Method: "PUT", Path: "/items/7",
		Params:  map[string]string{"id": "7"},
		Query:   map[string][]string{"q": {"search"}},
		Headers: map[string][]string{"X-Test": {"yes"}},
		Body:    []byte("hello \x00 world"),
	}
	resp := mustInvoke(t, f, req)
	if resp.Status != 200 || string(resp.Body) != "hello \x00 world" {
		t.Fatalf("got %d %q", resp.Status, resp.Body)
	}
	want := map[string]string{"X-Method": "PUT", "X-Path": "/items/7", "X-Param": "7", "X-Query": "search", "X-Header": "yes", "X-Count": "1"}
	for k, v := range want {
		if resp.Headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, resp.Headers[k], v)
		}
	}
	// An empty body is not a special case.
	if resp := mustInvoke(t, f, httpReq("/", "")); len(resp.Body) != 0 {
		t.Fatalf("empty body echoed as %q", resp.Body)
	}
}

func TestTimeoutStopsGuest(t *testing.T) {
	env := newEnv(t)
	loop := env.goFunction(t, "loop", FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(300 * time.Millisecond)}})
	echo := env.goFunction(t, "echo", FunctionConfig{})

	for _, path := range []string{"/spin", "/sleep"} {
		t.Run(path, func(t *testing.T) {
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := loop.Invoke(context.Background(), httpReq(path, ""))
				done <- err
			}()
			// A neighbour keeps answering while the loop burns its time.
			for i := 0; i < 5; i++ {
				mustInvoke(t, echo, httpReq("/", "still here"))
			}
			err := <-done
			requireErrorIs(t, err, ErrTimeout, aegis.ErrLimitExceeded)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("timeout took %v", d)
			}
		})
	}
	if !strings.Contains(env.logs.String(), "request_id=req-/spin") {
		t.Fatalf("failure not logged with request id:\n%s", env.logs)
	}
}

func TestMemoryLimit(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "membomb", FunctionConfig{Limits: manifest.Limits{Memory: 32 << 20}})
	for i := 0; i < 2; i++ { // the Function survives and fails the same way again
		_, err := f.Invoke(context.Background(), httpReq("/", ""))
		requireErrorIs(t, err, ErrMemory, aegis.ErrLimitExceeded)
	}
}

func TestMemoryLimitBelowModuleMinimum(t *testing.T) {
	env := newEnv(t)
	m, err := env.engine.Compile(context.Background(), wasmbuild.GoModule(t, "testdata/echo"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.engine.NewFunction(context.Background(), m, FunctionConfig{Limits: manifest.Limits{Memory: 64 << 10}})
	requireErrorIs(t, err, ErrMemory)
}

func TestResponseTooLarge(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "huge", FunctionConfig{Limits: manifest.Limits{MaxResponse: 1 << 20}})
	_, err := f.Invoke(context.Background(), httpReq("/", strconv.Itoa(2<<20)))
	requireErrorIs(t, err, ErrResponseTooLarge, aegis.ErrLimitExceeded)
	if resp := mustInvoke(t, f, httpReq("/", "1048576")); len(resp.Body) != 1<<20 {
		t.Fatalf("body of %d bytes, want exactly the limit", len(resp.Body))
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "echo", FunctionConfig{Limits: manifest.Limits{MaxBody: 10}})
	_, err := f.Invoke(context.Background(), httpReq("/", "01234567890"))
	requireErrorIs(t, err, aegis.ErrLimitExceeded)
}

func TestPanicFailsInvocationOnly(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "panic", FunctionConfig{})
	_, err := f.Invoke(context.Background(), httpReq("/panic", ""))
	requireErrorIs(t, err, ErrTrap)
	// The SDK logs the panic at error level: its first line is the
	// function's own message, kept apart from the error chain that the
	// server's log and calling functions see.
	if got := FunctionMessage(err); got != "panic: boom" {
		t.Errorf("function message %q, want %q", got, "panic: boom")
	}
	if strings.Contains(err.Error(), "boom") {
		t.Errorf("the function's words are in the error chain: %q", err)
	}
	if resp := mustInvoke(t, f, httpReq("/ok", "")); string(resp.Body) != "fine" {
		t.Fatalf("after panic got %q", resp.Body)
	}
	var logged bool
	for _, l := range env.host.logLines() {
		if l.Level == slog.LevelError && strings.Contains(l.Msg, "panic: boom") && l.RequestID == "req-/panic" {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("panic not logged through the host: %+v", env.host.logLines())
	}
}

func TestCompileRefuses(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		name string
		wasm func(t *testing.T) []byte
		errs []error
		msg  string
	}{
		{"not wasm", func(*testing.T) []byte { return []byte("#!/bin/sh\necho hi\n") }, []error{ErrInvalidModule, aegis.ErrInvalidArgument}, "not a WebAssembly binary"},
		{"wasm version 2", func(*testing.T) []byte { return []byte("\x00asm\x02\x00\x00\x00") }, []error{ErrInvalidModule}, "unsupported WebAssembly binary version"},
		// The header of a component (layer 1), as wasm32-wasip2 and
		// componentize-js write it, and nothing else: refused as a
		// component (one without the handler, or on the wazero build any
		// component), not as "malformed".
		{"component", func(*testing.T) []byte { return []byte("\x00asm\x0d\x00\x01\x00") }, []error{ErrInvalidModule}, "component"},
		// A type section claiming more bytes than follow: the compiler's
		// message (section names, offsets) stays in the log.
		{"malformed", func(*testing.T) []byte { return []byte("\x00asm\x01\x00\x00\x00\x01\x7f\x01") }, []error{ErrInvalidModule}, "malformed or uses features the sandbox does not support"},
		{"empty module", func(*testing.T) []byte { return []byte("\x00asm\x01\x00\x00\x00") }, []error{ErrInvalidModule}, "neither aegis_handle"},
		{"unknown import", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/badimport.c") }, []error{ErrUnknownImport, aegis.ErrInvalidArgument}, `module "env" function "forbidden"`},
		{"the preemption import", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/reserved.c") }, []error{ErrInvalidModule, aegis.ErrInvalidArgument}, `imports from "aegis_preempt", which is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.engine.Compile(context.Background(), tt.wasm(t))
			requireErrorIs(t, err, tt.errs...)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not mention %q", err, tt.msg)
			}
			for _, leak := range []string{"section", "offset", "wazero", "0x"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q passes on the compiler's wording (%q)", err, leak)
				}
			}
		})
	}
}

func TestHostCalls(t *testing.T) {
	env := newEnv(t)
	grants := manifest.Grants{KV: manifest.ReadWrite{Write: []string{"notes"}}}
	f := env.goFunction(t, "hostcalls", FunctionConfig{App: "a1", Function: "f1", Version: "v9", Grants: grants})
	resp := mustInvoke(t, f, httpReq("/", "note body"))
	var out map[string]struct {
		Value  string
		List   []string
		Status int
		Err    string
		Kind   string
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	check := func(step, wantValue, wantKind string) {
		t.Helper()
		s := out[step]
		if s.Value != wantValue || s.Kind != wantKind {
			t.Errorf("%s = %+v, want value %q kind %q", step, s, wantValue, wantKind)
		}
	}
	check("kv_put", "", "")
	check("kv_get", "note body", "")
	check("kv_missing", "", "not_found")
	check("kv_delete", "", "")
	check("kv_denied", "", "permission_denied")
	check("object_put", "", "")
	check("object_get", "png", "")
	check("object_delete", "", "")
	check("publish", "", "")
	check("fetch", "pong:ping", "")
	check("invoke", "POST /internal/thumb?size=s:pic|back", "")
	check("invoke_denied", "", "permission_denied")
	check("invoke_bad", "", "invalid_argument")
	check("internal", "", "internal")
	if got := out["kv_list"].List; len(got) != 1 || got[0] != "a" {
		t.Errorf("kv_list = %v", got)
	}
	if got := out["object_list"].List; len(got) != 1 || got[0] != "img/1" {
		t.Errorf("object_list = %v", got)
	}
	if out["fetch"].Status != 201 {
		t.Errorf("fetch status = %d", out["fetch"].Status)
	}
	if out["invoke"].Status != 203 {
		t.Errorf("invoke status = %d", out["invoke"].Status)
	}
	if msg := out["invoke_denied"].Err; !strings.Contains(msg, `"nope" not granted`) {
		t.Errorf("invoke denial message %q", msg)
	}
	if msg := out["kv_denied"].Err; !strings.Contains(msg, "permission denied") {
		t.Errorf("denied message %q", msg)
	}
	if msg := out["internal"].Err; strings.Contains(msg, "10.0.0.7") {
		t.Errorf("internal error detail leaked to the guest: %q", msg)
	}
	if !strings.Contains(env.logs.String(), "10.0.0.7") {
		t.Errorf("internal error detail not logged:\n%s", env.logs)
	}

	env.host.mu.Lock()
	defer env.host.mu.Unlock()
	if len(env.host.published) != 1 || env.host.published[0] != "note.saved:hi" {
		t.Errorf("published = %v", env.host.published)
	}
	if len(env.host.fetches) != 1 || env.host.fetches[0].Method != "POST" || env.host.fetches[0].URL != "https://api.example.com/x" {
		t.Errorf("fetches = %+v", env.host.fetches)
	}
	// The malformed invoke never reached the host.
	if len(env.host.invokes) != 2 || env.host.invokes[0].Headers["X-A"] != "1" || env.host.invokes[1].Method != "GET" {
		t.Errorf("invokes = %+v", env.host.invokes)
	}
	for _, c := range env.host.callers {
		if c.App != "a1" || c.Function != "f1" || c.Version != "v9" || c.RequestID != "req-/" || c.Grants == nil || c.Grants.KV.Write[0] != "notes" {
			t.Fatalf("caller = %+v", c)
		}
	}
}

func TestEventInvocation(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "hostcalls", FunctionConfig{})
	ev := &Request{Kind: KindEvent, RequestID: "e1", Topic: "note.saved", Attempt: 1, Body: []byte("payload")}
	if _, err := f.Invoke(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	env.host.mu.Lock()
	got := string(env.host.kv["events/note.saved"])
	env.host.mu.Unlock()
	if got != "payload" {
		t.Fatalf("event handler stored %q", got)
	}
	_, err := f.Invoke(context.Background(), &Request{Kind: KindEvent, RequestID: "e2", Topic: "fail"})
	requireErrorIs(t, err, ErrTrap)
}

func TestIsolation(t *testing.T) {
	env := newEnv(t)
	counts := func(f *Function, n int) string {
		var got []string
		for i := 0; i < n; i++ {
			got = append(got, mustInvoke(t, f, httpReq("/", "")).Headers["X-Count"])
		}
		return strings.Join(got, ",")
	}
	reuse := env.goFunction(t, "echo", FunctionConfig{Function: "reuse", Isolation: manifest.IsolationReuse})
	if got := counts(reuse, 3); got != "1,2,3" {
		t.Errorf("reuse: counts %s, want 1,2,3", got)
	}
	recycled := env.goFunction(t, "echo", FunctionConfig{Function: "recycled", MaxReuse: 2})
	if got := counts(recycled, 5); got != "1,2,1,2,1" {
		t.Errorf("max reuse 2: counts %s, want 1,2,1,2,1", got)
	}
	fresh := env.goFunction(t, "echo", FunctionConfig{Function: "fresh", Isolation: manifest.IsolationPerRequest})
	if got := counts(fresh, 4); got != "1,1,1,1" {
		t.Errorf("per-request: counts %s, want 1,1,1,1", got)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "loop", FunctionConfig{Limits: manifest.Limits{Concurrency: 1, Timeout: manifest.Duration(2 * time.Second)}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = f.Invoke(context.Background(), httpReq("/sleep", ""))
	}()
	time.Sleep(100 * time.Millisecond) // let it take the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Invoke(ctx, httpReq("/spin", ""))
	requireErrorIs(t, err, aegis.ErrLimitExceeded)
	if errors.Is(err, ErrTimeout) {
		t.Fatalf("waiting for a slot reported as a guest timeout: %v", err)
	}
	<-done
}

func TestGuestOutputIsLogged(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "stdout", FunctionConfig{})
	mustInvoke(t, f, httpReq("/", ""))
	want := []logLine{
		{slog.LevelInfo, "line one", "req-/"},
		{slog.LevelError, "an error", "req-/"},
		{slog.LevelWarn, "a warning", "req-/"},
		{slog.LevelInfo, "line two", "req-/"},
		{slog.LevelInfo, "line three", "req-/"}, // unfinished line flushed at the end
	}
	got := env.host.logLines()
	for _, w := range want {
		found := false
		for _, g := range got {
			if g == w {
				found = true
			}
		}
		if !found {
			t.Errorf("missing log line %+v in %+v", w, got)
		}
	}

	env.host.mu.Lock()
	env.host.logs = nil
	env.host.mu.Unlock()
	mustInvoke(t, f, httpReq("/flood", ""))
	total, truncated := 0, false
	for _, l := range env.host.logLines() {
		total += len(l.Msg)
		truncated = truncated || strings.Contains(l.Msg, "truncated")
	}
	if total > maxGuestOutput+200 || !truncated {
		t.Fatalf("flood logged %d bytes, truncated notice %v", total, truncated)
	}
}

func TestCReactor(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, wasmbuild.CReactor(t, "testdata/c/kvreactor.c"), FunctionConfig{})
	resp := mustInvoke(t, f, httpReq("/", "hi there"))
	if resp.Status != 200 || string(resp.Body) != `{"stored":8}` || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("got %d %v %s", resp.Status, resp.Headers, resp.Body)
	}
	env.host.mu.Lock()
	got := string(env.host.kv["greetings/last"])
	env.host.mu.Unlock()
	if got != "hi there" {
		t.Fatalf("kv holds %q", got)
	}
	// Pointers outside guest memory are refused, never a host panic.
	resp = mustInvoke(t, f, httpReq("/", "oob"))
	if string(resp.Body) != `{"put":-3,"get":-3,"resp":-3}` {
		t.Fatalf("out-of-range pointers: %s", resp.Body)
	}
}

func TestCCommand(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, wasmbuild.CCommand(t, "testdata/c/upper.c"), FunctionConfig{Limits: manifest.Limits{MaxResponse: 1 << 10}})
	if f.module.Style() != StyleCommand {
		t.Fatalf("style = %v", f.module.Style())
	}
	for i := 0; i < 2; i++ {
		resp := mustInvoke(t, f, httpReq("/", "hello, wasm"))
		if resp.Status != 200 || string(resp.Body) != "HELLO, WASM" {
			t.Fatalf("got %d %q", resp.Status, resp.Body)
		}
	}
	_, err := f.Invoke(context.Background(), httpReq("/", "fail"))
	requireErrorIs(t, err, ErrTrap)
	if !strings.Contains(err.Error(), "exit code 3") {
		t.Fatalf("error %q does not name the exit code", err)
	}
	// It wrote to stderr but logged nothing at error level: no message of
	// its own, the exit code says it all.
	if m := FunctionMessage(err); m != "" {
		t.Errorf("function message %q from a line that was not at error level", m)
	}
	_, err = f.Invoke(context.Background(), httpReq("/", strings.Repeat("a", 2<<10)))
	requireErrorIs(t, err, ErrResponseTooLarge)
	var warned bool
	for _, l := range env.host.logLines() {
		warned = warned || (l.Level == slog.LevelWarn && l.Msg == "upper-cased")
	}
	if !warned {
		t.Fatalf("stderr not logged at warn: %+v", env.host.logLines())
	}
}

func TestCompileCacheDir(t *testing.T) {
	dir := t.TempDir()
	e, err := New(context.Background(), Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if _, err := e.Compile(context.Background(), wasmbuild.CReactor(t, "testdata/c/kvreactor.c")); err != nil {
		t.Fatal(err)
	}
	var files int
	walk(t, dir, func() { files++ })
	if files == 0 {
		t.Fatal("compilation cache directory is empty after Compile")
	}
}

func walk(t *testing.T, dir string, each func()) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			walk(t, dir+"/"+e.Name(), each)
		} else {
			each()
		}
	}
}

func TestNoHost(t *testing.T) {
	e, err := New(context.Background(), Config{CacheDir: testCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	env := &testEnv{engine: e}
	f := env.goFunction(t, "hostcalls", FunctionConfig{})
	resp := mustInvoke(t, f, httpReq("/", ""))
	if !strings.Contains(string(resp.Body), `"kind":"unavailable"`) {
		t.Fatalf("without a host, calls should be unavailable: %s", resp.Body)
	}
}

func TestClose(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "echo", FunctionConfig{Isolation: manifest.IsolationPerRequest})
	mustInvoke(t, f, httpReq("/", ""))
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := f.Invoke(context.Background(), httpReq("/", ""))
	requireErrorIs(t, err, aegis.ErrUnavailable)
	if err := env.engine.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := env.engine.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestHammer runs many goroutines against one Function so the race
// detector can see the pool, the slots and the output routing under load.
func TestHammer(t *testing.T) {
	env := newEnv(t)
	for _, iso := range []manifest.Isolation{manifest.IsolationReuse, manifest.IsolationPerRequest} {
		t.Run(string(iso), func(t *testing.T) {
			f := env.goFunction(t, "echo", FunctionConfig{Function: string(iso), Isolation: iso, MaxReuse: 7, Limits: manifest.Limits{Concurrency: 4}})
			goroutines, calls := 16, 25
			if iso == manifest.IsolationPerRequest || testing.Short() {
				calls = 5 // each call starts a Go runtime
			}
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*calls)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < calls; i++ {
						body := fmt.Sprintf("g%d-i%d", g, i)
						resp, err := f.Invoke(context.Background(), httpReq("/", body))
						if err != nil {
							errs <- err
							return
						}
						if string(resp.Body) != body {
							errs <- fmt.Errorf("got %q, want %q", resp.Body, body)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			f.mu.Lock()
			idle := len(f.idle)
			f.mu.Unlock()
			if idle > 4 {
				t.Fatalf("%d idle instances, concurrency is 4", idle)
			}
		})
	}
}

// TestExampleHelloC keeps examples/hello-c building and working.
func TestExampleHelloC(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, wasmbuild.CReactor(t, "../../examples/hello-c/hello.c"), FunctionConfig{App: "hello-c", Function: "hello", Version: "v1"})
	resp := mustInvoke(t, f, httpReq("/hello", "hello from C"))
	if resp.Status != 200 || string(resp.Body) != `{"message":"hello from C","stored":12}` {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	env.host.mu.Lock()
	defer env.host.mu.Unlock()
	if got := string(env.host.kv["greetings/last"]); got != "hello from C" {
		t.Fatalf("kv holds %q", got)
	}
}

// A module's host imports are what it links of the "aegis" module: a Go
// function that never writes a table imports no kv_put.
func TestHostImports(t *testing.T) {
	env := newEnv(t)
	echo := env.goFunction(t, "echo", FunctionConfig{})
	calls := env.goFunction(t, "hostcalls", FunctionConfig{})
	got := calls.HostImports()
	for _, want := range []string{"kv_get", "kv_put", "request_body_read"} {
		if !slices.Contains(got, want) {
			t.Errorf("hostcalls imports %q, want %s among them", got, want)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("imports %q are not sorted", got)
	}
	if e := echo.HostImports(); slices.Contains(e, "kv_put") || slices.Contains(e, "fetch") || len(e) == 0 {
		t.Errorf("echo imports %q: want some, neither kv_put nor fetch", e)
	}
	var none *Function
	if none.HostImports() != nil {
		t.Error("a nil function has imports")
	}
}
