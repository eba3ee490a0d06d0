package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
	"github.com/aegis-platform/aegis/manifest"
)

// burnCPU keeps every processor busy with Go work until the returned stop
// is called, so that timing assertions hold under load, not only on an
// idle machine.
func burnCPU() (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for !done.Load() {
				for i := range 1000 {
					x += i
				}
			}
			_ = x
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// TestPreemptionStopsRunawayGuests: a busy loop, a Go loop and an
// exponential tree of calls without any loop all end within 10 % of their
// timeout, on a loaded machine; unbounded recursion ends as a trap at once.
func TestPreemptionStopsRunawayGuests(t *testing.T) {
	env := newEnv(t)
	const timeout = time.Second
	limits := FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(timeout)}}
	runaway := env.function(t, wasmbuild.CReactor(t, "testdata/c/runaway.c"), limits)
	goLoop := env.goFunction(t, "loop", limits)
	echo := env.goFunction(t, "echo", FunctionConfig{})

	stop := burnCPU()
	defer stop()
	tests := []struct {
		name string
		f    *Function
		req  *Request
	}{
		{"C busy loop", runaway, httpReq("/", "spin")},
		{"C exponential call tree", runaway, httpReq("/", "tree")},
		{"Go busy loop", goLoop, httpReq("/spin", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := tc.f.Invoke(context.Background(), tc.req)
				done <- err
			}()
			mustInvoke(t, echo, httpReq("/", "a neighbour still answers"))
			err := <-done
			took := time.Since(start)
			requireErrorIs(t, err, ErrTimeout)
			slack := timeout / 10
			if raceEnabled {
				slack = timeout / 4
			}
			if took < timeout || took > timeout+slack {
				t.Errorf("stopped after %s, want within %s of %s", took, slack, timeout)
			}
		})
	}
	t.Run("unbounded recursion", func(t *testing.T) {
		start := time.Now()
		_, err := runaway.Invoke(context.Background(), httpReq("/", "recurse"))
		requireErrorIs(t, err, ErrTrap)
		if took := time.Since(start); took > timeout/2 {
			t.Errorf("recursion ended after %s, want a trap well before the timeout", took)
		}
	})
	// The instance that was stopped is gone; the function serves again.
	if resp := mustInvoke(t, runaway, httpReq("/", "sum 100")); string(resp.Body) != "5050" {
		t.Errorf("after the timeouts: %q", resp.Body)
	}
}

// TestSpinningGuestDoesNotHoldOffGC: compiled code that never left for Go
// would keep the garbage collector's stop-the-world waiting until the
// guest ended; the countdown's calls to the host let it through.
func TestSpinningGuestDoesNotHoldOffGC(t *testing.T) {
	env := newEnv(t)
	f := env.function(t, wasmbuild.CReactor(t, "testdata/c/runaway.c"),
		FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(3 * time.Second)}})
	done := make(chan error, 1)
	go func() {
		_, err := f.Invoke(context.Background(), httpReq("/", "spin"))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // the guest is spinning by now
	start := time.Now()
	runtime.GC()
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("a GC took %s while a guest spun", took)
	}
	requireErrorIs(t, <-done, ErrTimeout)
}

// outcome is what a differential run compares: the answer, or the kind of
// failure.
type outcome struct {
	status  int
	headers map[string]string
	body    string
	failure error
}

func outcomeOf(resp *Response, err error) outcome {
	if err != nil {
		for _, kind := range []error{ErrTimeout, ErrMemory, ErrResponseTooLarge, ErrTrap} {
			if errors.Is(err, kind) {
				return outcome{failure: kind}
			}
		}
		return outcome{failure: err}
	}
	return outcome{status: resp.Status, headers: resp.Headers, body: string(resp.Body)}
}

// TestPreemptionKeepsResults runs the same guests and requests with the
// countdown and as the modules come, on a runtime stopping guests with
// wazero's own close-on-context-done: every answer and every kind of
// failure must be the same.
func TestPreemptionKeepsResults(t *testing.T) {
	instrumented := newEnv(t)
	plain := &testEnv{host: newRecorder(), logs: logbuf.New()}
	// A cache of its own: wazero's cache key is the module's bytes, not
	// the runtime's settings, and these bytes are compiled here with
	// close-on-context-done's checks.
	e, err := New(context.Background(), Config{Host: plain.host, contextDone: true,
		CacheDir: testCacheDir() + "-context-done", Logger: slog.New(slog.NewTextHandler(plain.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	plain.engine = e
	t.Cleanup(func() { _ = e.Close(context.Background()) })

	// Generous timeouts, so that a slow machine (or the race detector)
	// cannot turn one side's trap into a timeout; only the loops use the
	// short one.
	calm := FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(20 * time.Second), MaxResponse: 1 << 12}}
	short := FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(time.Second)}}
	tests := []struct {
		name string
		wasm func(t *testing.T) []byte
		cfg  FunctionConfig
		reqs []*Request
	}{
		{"Go echo", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/echo") }, FunctionConfig{}, []*Request{
			{Kind: KindHTTP, RequestID: "r1", Method: "PUT", Path: "/items/7", Params: map[string]string{"id": "7"},
				Query: map[string][]string{"q": {"search"}}, Headers: map[string][]string{"X-Test": {"yes"}}, Body: []byte("hello \x00 world")},
			httpReq("/", ""),
		}},
		{"echo example", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "../../examples/echo") }, FunctionConfig{}, []*Request{
			httpReq("/echo", `{"message":"hello, aegis"}`), httpReq("/echo", `not json`),
		}},
		{"Go panic", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/panic") }, FunctionConfig{}, []*Request{httpReq("/", "")}},
		{"Go huge response", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/huge") }, calm, []*Request{httpReq("/", "")}},
		{"Go loop", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/loop") }, short, []*Request{httpReq("/spin", "")}},
		{"C reactor", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/kvreactor.c") }, FunctionConfig{}, []*Request{
			httpReq("/", "hi there"), httpReq("/", "oob"),
		}},
		{"C runaway", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/runaway.c") }, calm, []*Request{
			httpReq("/", "sum 100000"), httpReq("/", "ok"), httpReq("/", "recurse"),
		}},
		{"C spin", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/runaway.c") }, short, []*Request{httpReq("/", "spin")}},
		{"C command", func(t *testing.T) []byte { return wasmbuild.CCommand(t, "testdata/c/upper.c") }, calm, []*Request{
			httpReq("/", "hello, wasm"), httpReq("/", "fail"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wasm := tc.wasm(t)
			a, b := instrumented.function(t, wasm, tc.cfg), plain.function(t, wasm, tc.cfg)
			for _, req := range tc.reqs {
				got := outcomeOf(a.Invoke(context.Background(), req))
				want := outcomeOf(b.Invoke(context.Background(), req))
				if got.status != want.status || got.body != want.body || !maps.Equal(got.headers, want.headers) ||
					!errors.Is(got.failure, want.failure) && got.failure != want.failure {
					t.Errorf("%s %q: with the countdown %+v, without %+v", req.Path, req.Body, got, want)
				}
			}
		})
	}
}
