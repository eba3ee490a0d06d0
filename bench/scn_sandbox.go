package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/preempt"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

// Scenarios 2 and 4 drive the sandbox package directly, with no server
// around it, so that what they measure is the sandbox and the guest and
// nothing of HTTP or JetStream.

func init() {
	register(Scenario{ID: 2, Name: "sandbox invoke overhead, warm instance", Run: runInvokeOverhead})
	register(Scenario{ID: 4, Name: "per-request isolation", Run: runIsolation})
}

// Fixture sources, relative to the module root (go run ./bench runs there).
var (
	fixtureGoEcho   = filepath.Join("bench", "testdata", "goecho")
	fixtureCEcho    = filepath.Join("bench", "testdata", "c", "echo.c")
	fixtureCNoop    = filepath.Join("bench", "testdata", "c", "noop.c")
	fixtureCCommand = filepath.Join("bench", "testdata", "c", "echo_cmd.c")
)

// guest is one module under test and what its echo must answer.
type guest struct {
	name string // "Go echo", "C echo", …
	wasm []byte
	echo bool // answers the request body
	// targetNs is the most a warm invocation should take; 0 reports only.
	targetNs float64
	// preemptCost: also price preemption on this module's raw call, the
	// countdown the sandbox uses and the close-on-context-done it
	// replaced (once is enough: it does not depend on the guest).
	preemptCost bool
}

func sandboxGuests(ctx context.Context, env *Env) ([]guest, error) {
	goEcho, err := env.GoModule(ctx, fixtureGoEcho)
	if err != nil {
		return nil, err
	}
	cEcho, err := env.CModule(ctx, fixtureCEcho, true)
	if err != nil {
		return nil, err
	}
	cNoop, err := env.CModule(ctx, fixtureCNoop, true)
	if err != nil {
		return nil, err
	}
	return []guest{
		{name: "Go SDK echo", wasm: goEcho, echo: true, targetNs: 5000},
		{name: "C echo", wasm: cEcho, echo: true},
		{name: "C no-op handler", wasm: cNoop, preemptCost: true, targetNs: 500},
	}, nil
}

func benchRequest() *sandbox.Request {
	return &sandbox.Request{Kind: sandbox.KindHTTP, RequestID: "bench-0000000000000001", Method: "POST", Path: "/echo", Body: []byte("hello")}
}

// newBenchFunction compiles wasm on eng and makes a function of it with the
// default limits.
func newBenchFunction(ctx context.Context, eng *sandbox.Engine, wasm []byte, isolation manifest.Isolation) (*sandbox.Function, error) {
	m, err := eng.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	return eng.NewFunction(ctx, m, sandbox.FunctionConfig{App: "bench", Function: "fn", Version: "1", Isolation: isolation})
}

// invoker returns one invocation of f as a loop body, which fails if an
// echo guest does not answer the body it was sent: a benchmark of a broken
// function would measure nothing.
func invoker(ctx context.Context, f *sandbox.Function, echo bool) func() error {
	req := benchRequest()
	return func() error {
		resp, err := f.Invoke(ctx, req)
		if err != nil {
			return err
		}
		if echo && !bytes.Equal(resp.Body, req.Body) {
			return fmt.Errorf("echo answered %q, want %q", resp.Body, req.Body)
		}
		return nil
	}
}

func newBenchEngine(ctx context.Context) (*sandbox.Engine, error) {
	return sandbox.New(ctx, sandbox.Config{Host: noHost{}, Logger: slog.New(slog.DiscardHandler)})
}

func runInvokeOverhead(ctx context.Context, env *Env) ([]*Result, error) {
	guests, err := sandboxGuests(ctx, env)
	if err != nil {
		return nil, err
	}
	eng, err := newBenchEngine(ctx)
	if err != nil {
		return nil, err
	}
	defer eng.Close(ctx)
	budget := 300 * time.Millisecond
	if env.Quick {
		budget = 10 * time.Millisecond
	}

	var out []*Result
	for _, g := range guests {
		f, err := newBenchFunction(ctx, eng, g.wasm, manifest.IsolationReuse)
		if err != nil {
			return out, fmt.Errorf("%s: %w", g.name, err)
		}
		subject, err := calibrate(budget, invoker(ctx, f, g.echo))
		if err != nil {
			return out, fmt.Errorf("%s: invoke: %w", g.name, err)
		}
		rs, err := invokeOverheadResults(ctx, env, g, subject, budget)
		out = append(out, rs...)
		_ = f.Close(ctx)
		if err != nil {
			return out, fmt.Errorf("%s: %w", g.name, err)
		}
	}
	return out, nil
}

// invokeOverheadResults alternates the raw call with the invocation and,
// for the guest that asks, the raw call without preemption with the same
// call under each way of preempting.
func invokeOverheadResults(ctx context.Context, env *Env, g guest, invoke *perOpLoop, budget time.Duration) ([]*Result, error) {
	rawMod, err := newRawModule(ctx, g.wasm, preemptOff)
	if err != nil {
		return nil, err
	}
	defer rawMod.close(ctx)
	raw, err := calibrate(budget, rawMod.call)
	if err != nil {
		return nil, err
	}
	b, s, samples, err := Alternate(env.Rounds, raw.nsPerOp, invoke.nsPerOp)
	if err != nil {
		return nil, err
	}
	r := ratioResult("invoke, "+g.name, "ns/op", "raw wazero call, no preemption", b, s, samples)
	r.RatioNote = "invoke / raw call"
	// Once a raw call costs tens of nanoseconds, a ratio to it says little
	// about what a user waits for: the targets are absolute, on this
	// machine's class, and the ratio is reported beside them.
	if g.targetNs > 0 {
		r.Target = fmt.Sprintf("≤ %.1f µs", g.targetNs/1000)
		r.Met = Met(s <= g.targetNs)
	}
	r.Notes = "Function.Invoke of a warm reuse instance (slot, pool, timeout context, invocation state, host calls) " +
		"vs CallWithStack of an exported no-op in the same module as compiled, on a runtime that cannot stop it (no preemption at all)."
	if !g.echo {
		r.Notes = "aegis_handle returns 0 with no host call: the sandbox's own per-invocation work, without any guest work."
	}
	out := []*Result{r}
	if !g.preemptCost {
		return out, nil
	}
	for _, p := range []struct {
		mode  preemption
		name  string
		notes string
	}{
		{preemptCountdown, "raw call with the preemption countdown (" + g.name + " module)",
			"The module rewritten as the sandbox runs it (internal/preempt): a countdown at every loop header and function entry, a host call every 16,384."},
		{preemptCloseOnDone, "raw call with close-on-context-done (" + g.name + " module)",
			"What the countdown replaced: WithCloseOnContextDone(true) starts a goroutine per call to watch the context and leaves machine code at every loop header."},
	} {
		mod, err := newRawModule(ctx, g.wasm, p.mode)
		if err != nil {
			return out, err
		}
		with, err := calibrate(budget, mod.call)
		if err != nil {
			mod.close(ctx)
			return out, err
		}
		b2, s2, samples2, err := Alternate(env.Rounds, raw.nsPerOp, with.nsPerOp)
		mod.close(ctx)
		if err != nil {
			return out, err
		}
		c := ratioResult(p.name, "ns/op", "raw call without preemption", b2, s2, samples2)
		c.RatioNote = "with / without"
		c.Notes = p.notes
		out = append(out, c)
	}
	return out, nil
}

// preemption is how a raw runtime can stop a guest.
type preemption int

const (
	preemptOff         preemption = iota // it cannot
	preemptCountdown                     // the sandbox's way (internal/preempt)
	preemptCloseOnDone                   // wazero's WithCloseOnContextDone
)

// rawModule is a module instantiated straight with wazero, with its
// "aegis" imports stubbed, whose exported bench_noop is called directly: the
// cheapest way into the guest there is.
type rawModule struct {
	rt     wazero.Runtime
	ctx    context.Context
	cancel context.CancelFunc
	fn     api.Function
	stack  []uint64
}

func newRawModule(ctx context.Context, wasm []byte, p preemption) (*rawModule, error) {
	rt, cm, err := rawRuntime(ctx, wasm, p)
	if err != nil {
		return nil, err
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("raw instantiate: %w", err)
	}
	fn := mod.ExportedFunction("bench_noop")
	if fn == nil {
		_ = rt.Close(ctx)
		return nil, errors.New("raw instantiate: module exports no bench_noop")
	}
	// A context that can end, like every invocation's: with close on
	// context done, wazero watches it for the length of each call.
	callCtx, cancel := context.WithCancel(ctx)
	return &rawModule{rt: rt, ctx: callCtx, cancel: cancel, fn: fn, stack: make([]uint64, 1)}, nil
}

func (r *rawModule) call() error { return r.fn.CallWithStack(r.ctx, r.stack) }
func (r *rawModule) close(ctx context.Context) {
	r.cancel()
	_ = r.rt.Close(ctx)
}

// rawRuntime makes a wazero runtime with WASI and stubs for every function
// the module imports from "aegis", and compiles wasm on it, preempted as p
// says.
func rawRuntime(ctx context.Context, wasm []byte, p preemption) (wazero.Runtime, wazero.CompiledModule, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(p == preemptCloseOnDone))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	if p == preemptCountdown {
		var err error
		if wasm, err = preempt.Instrument(wasm); err != nil {
			_ = rt.Close(ctx)
			return nil, nil, err
		}
		_, err = rt.NewHostModuleBuilder(preempt.ImportModule).NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				stack[0] = preempt.Interval
			}), nil, []api.ValueType{api.ValueTypeI32}).
			Export(preempt.ImportName).Instantiate(ctx)
		if err != nil {
			_ = rt.Close(ctx)
			return nil, nil, err
		}
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, nil, fmt.Errorf("raw compile: %w", err)
	}
	stubs := rt.NewHostModuleBuilder("aegis")
	n := 0
	for _, imp := range cm.ImportedFunctions() {
		if mod, name, _ := imp.Import(); mod == "aegis" {
			results := len(imp.ResultTypes())
			stubs.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
					clear(stack[:results])
				}), imp.ParamTypes(), imp.ResultTypes()).
				Export(name)
			n++
		}
	}
	if n > 0 {
		if _, err := stubs.Instantiate(ctx); err != nil {
			_ = rt.Close(ctx)
			return nil, nil, fmt.Errorf("raw host stubs: %w", err)
		}
	}
	return rt, cm, nil
}

// noHost is a sandbox.Host that grants nothing: scenarios 2 and 4 measure
// guests that make no capability call.
type noHost struct{}

var errNoHost = fmt.Errorf("%w: no capabilities in this benchmark", aegis.ErrUnavailable)

func (noHost) KVGet(context.Context, *sandbox.Caller, string, string) ([]byte, error) {
	return nil, errNoHost
}
func (noHost) KVPut(context.Context, *sandbox.Caller, string, string, []byte) error { return errNoHost }
func (noHost) KVDelete(context.Context, *sandbox.Caller, string, string) error      { return errNoHost }
func (noHost) KVList(context.Context, *sandbox.Caller, string, string) ([]string, error) {
	return nil, errNoHost
}
func (noHost) ObjectGet(context.Context, *sandbox.Caller, string) ([]byte, error) {
	return nil, errNoHost
}
func (noHost) ObjectPut(context.Context, *sandbox.Caller, string, []byte) error { return errNoHost }
func (noHost) ObjectDelete(context.Context, *sandbox.Caller, string) error      { return errNoHost }
func (noHost) ObjectList(context.Context, *sandbox.Caller, string) ([]string, error) {
	return nil, errNoHost
}
func (noHost) Publish(context.Context, *sandbox.Caller, string, []byte) error { return errNoHost }
func (noHost) Fetch(context.Context, *sandbox.Caller, *sandbox.FetchRequest) (*sandbox.FetchResponse, error) {
	return nil, errNoHost
}
func (noHost) Invoke(context.Context, *sandbox.Caller, *sandbox.InvokeRequest) (*sandbox.InvokeResponse, error) {
	return nil, errNoHost
}
func (noHost) Log(context.Context, *sandbox.Caller, slog.Level, string) {}

// runIsolation compares a fresh instance per request with a reused one, and
// a C command module (always fresh) with a raw wazero instantiation of it.
// Latencies are of invocations run back to back: the per-request pool's
// background filler then competes with the invocations for the CPU, which
// is the worst case; a paced run, where the pool refills between requests,
// is reported beside it.
func runIsolation(ctx context.Context, env *Env) ([]*Result, error) {
	guests, err := sandboxGuests(ctx, env)
	if err != nil {
		return nil, err
	}
	cmd, err := env.CModule(ctx, fixtureCCommand, false)
	if err != nil {
		return nil, err
	}
	eng, err := newBenchEngine(ctx)
	if err != nil {
		return nil, err
	}
	defer eng.Close(ctx)
	n := 2000
	if env.Quick {
		n = 20
	}

	var out []*Result
	for _, g := range guests[:2] { // the echo guests: Go and C
		rs, err := isolationResults(ctx, env, eng, g, n)
		out = append(out, rs...)
		if err != nil {
			return out, fmt.Errorf("%s: %w", g.name, err)
		}
	}
	r, err := commandResult(ctx, env, eng, cmd, n)
	if err != nil {
		return out, fmt.Errorf("command module: %w", err)
	}
	return append(out, r), nil
}

func isolationResults(ctx context.Context, env *Env, eng *sandbox.Engine, g guest, n int) ([]*Result, error) {
	reuse, err := newBenchFunction(ctx, eng, g.wasm, manifest.IsolationReuse)
	if err != nil {
		return nil, err
	}
	defer reuse.Close(ctx)
	fresh, err := newBenchFunction(ctx, eng, g.wasm, manifest.IsolationPerRequest)
	if err != nil {
		return nil, err
	}
	defer fresh.Close(ctx)
	reuseCall, freshCall := invoker(ctx, reuse, g.echo), invoker(ctx, fresh, g.echo)
	// The paced runs leave the background filler time to replace the
	// instance each call used.
	pause := 2 * time.Millisecond
	if g.name == "Go SDK echo" {
		// A Go instance costs milliseconds (the Go runtime initializes in
		// each): fewer calls keep the scenario short, longer pauses let the
		// pool refill.
		n, pause = max(n/10, 10), 10*time.Millisecond
	}
	c := g.name == "C echo"

	var out []*Result
	for _, paced := range []bool{false, true} {
		calls, p, how := n, time.Duration(0), "back to back"
		if paced {
			// Pauses dominate a paced round's time: fewer calls.
			calls, p, how = max(n/4, 10), pause, fmt.Sprintf("paced, %s between requests", pause)
			if env.Quick {
				p = time.Millisecond
			}
		}
		b, s, samples, err := Alternate(env.Rounds,
			func() (float64, error) { return p50Micros(calls, p, reuseCall) },
			func() (float64, error) { return p50Micros(calls, p, freshCall) })
		if err != nil {
			return out, err
		}
		r := ratioResult(fmt.Sprintf("fresh instance per request, %s (%s)", g.name, how), "µs p50", "reuse", b, s, samples)
		r.RatioNote = "per-request / reuse"
		r.Target = "report"
		if c && !paced {
			r.Target = "≤ 100 µs p50"
			r.Met = Met(s <= 100)
		}
		r.Notes = fmt.Sprintf("%d sequential invocations per round; per-request keeps %s", calls,
			"a pool of 2 pre-instantiated instances filled in the background, so a paced caller mostly finds one ready.")
		out = append(out, r)
	}
	return out, nil
}

// commandResult times a C command module through the sandbox against a raw
// wazero instantiation running _start with the same stdin.
func commandResult(ctx context.Context, env *Env, eng *sandbox.Engine, wasm []byte, n int) (*Result, error) {
	f, err := newBenchFunction(ctx, eng, wasm, "")
	if err != nil {
		return nil, err
	}
	defer f.Close(ctx)
	rt, cm, err := rawRuntime(ctx, wasm, preemptCountdown)
	if err != nil {
		return nil, err
	}
	defer rt.Close(ctx)
	body := benchRequest().Body
	var stdout bytes.Buffer
	raw := func() error {
		stdout.Reset()
		// The sandbox's clocks and random source: wazero's default random
		// source is a seeded math/rand whose seeding alone costs several
		// microseconds per instance, which would flatter the sandbox.
		mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").
			WithSysWalltime().WithSysNanotime().WithRandSource(crand.Reader).
			WithStdin(bytes.NewReader(body)).WithStdout(&stdout))
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 0 {
			err = nil
		}
		if mod != nil {
			_ = mod.Close(ctx)
		}
		if err == nil && !bytes.Equal(stdout.Bytes(), body) {
			err = fmt.Errorf("raw command wrote %q, want %q", stdout.Bytes(), body)
		}
		return err
	}
	b, s, samples, err := Alternate(env.Rounds,
		func() (float64, error) { return p50Micros(n, 0, raw) },
		func() (float64, error) { return p50Micros(n, 0, invoker(ctx, f, true)) })
	if err != nil {
		return nil, err
	}
	r := ratioResult("C command module (_start, always fresh)", "µs p50", "raw wazero instantiate + _start", b, s, samples)
	r.RatioNote = "invoke / raw"
	r.Target = "≤ 100 µs p50"
	r.Met = Met(s <= 100)
	r.Notes = "The raw baseline instantiates the same compiled module with the sandbox's clocks, random source, stdin and stdout; " +
		"the sandbox adds stderr, the memory allocator that enforces the limit, and the invocation's bookkeeping."
	return r, nil
}
