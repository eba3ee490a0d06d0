package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/aegis-platform/aegis/internal/preempt"
)

// Baselines for benchmarks: a module run straight on the engine, with
// nothing of the sandbox around it (no pool, limits, invocation state or
// host functions beyond stubs), so that bench/ can say what the sandbox
// adds to the cheapest call the engine can make. They live here because
// this is the only package that imports the engine. Not for serving.

// RawPreemption is how a raw module can be stopped while it runs.
type RawPreemption int

const (
	// RawNoPreemption: nothing stops the call (wazero only).
	RawNoPreemption RawPreemption = iota + 1
	// RawCountdown: the countdown of package preempt, as the wazero build
	// runs every module, with a tick that never ends the call.
	RawCountdown
	// RawContextDone: wazero's WithCloseOnContextDone, which the
	// countdown replaced.
	RawContextDone
	// RawEngineChecks: wazy's own preemption checks, which it always
	// compiles in (there is no way to turn them off).
	RawEngineChecks
)

func (p RawPreemption) String() string {
	switch p {
	case RawNoPreemption:
		return "no preemption"
	case RawCountdown:
		return "the preemption countdown"
	case RawContextDone:
		return "close-on-context-done"
	case RawEngineChecks:
		return "the engine's own preemption checks"
	default:
		return fmt.Sprintf("RawPreemption(%d)", int(p))
	}
}

// RawPreemptions lists the ways this build's engine can run a raw module,
// the cheapest first: the baseline an invocation is measured against.
func RawPreemptions() []RawPreemption { return slices.Clone(rawPreemptions) }

// RawModule is a reactor module instantiated straight on the engine with
// its "aegis" imports stubbed; Call calls its exported bench_noop, the
// cheapest way into the guest there is.
type RawModule struct {
	rt     wasmRuntime
	ctx    context.Context
	cancel context.CancelFunc
	fn     guestFunction
	stack  []uint64
}

// NewRawModule compiles and instantiates wasm, which must export
// bench_noop, preempted as p says.
func NewRawModule(ctx context.Context, wasm []byte, p RawPreemption) (*RawModule, error) {
	rt, cm, err := rawRuntime(ctx, wasm, p)
	if err != nil {
		return nil, err
	}
	mod, err := rt.InstantiateModule(ctx, cm, newModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("raw instantiate: %w", err)
	}
	fn := mod.ExportedFunction("bench_noop")
	if fn == nil {
		_ = rt.Close(ctx)
		return nil, errors.New("raw instantiate: module exports no bench_noop")
	}
	// A context that can end, like every invocation's: an engine that
	// watches contexts pays for it as it would in the sandbox.
	callCtx, cancel := context.WithCancel(ctx)
	return &RawModule{rt: rt, ctx: callCtx, cancel: cancel, fn: fn, stack: make([]uint64, 1)}, nil
}

// Call calls bench_noop once.
func (r *RawModule) Call() error { return r.fn.CallWithStack(r.ctx, r.stack) }

// Close releases the module and its runtime.
func (r *RawModule) Close(ctx context.Context) {
	r.cancel()
	_ = r.rt.Close(ctx)
}

// RawCommand is a command module compiled straight on the engine; Run
// instantiates it and runs _start, as the sandbox does for every
// invocation of a command, with the sandbox's clocks and random source.
type RawCommand struct {
	rt wasmRuntime
	cm compiledModule
}

// NewRawCommand compiles wasm, preempted the way this build's sandbox
// preempts modules.
func NewRawCommand(ctx context.Context, wasm []byte) (*RawCommand, error) {
	rt, cm, err := rawRuntime(ctx, wasm, rawPreemptions[len(rawPreemptions)-1])
	if err != nil {
		return nil, err
	}
	return &RawCommand{rt: rt, cm: cm}, nil
}

// Run runs the command once with stdin and returns what it wrote to
// stdout; exit code 0 is success.
func (c *RawCommand) Run(ctx context.Context, stdin []byte) ([]byte, error) {
	var stdout bytes.Buffer
	// The sandbox's random source: the engine's default is a seeded
	// math/rand whose seeding alone costs several microseconds per
	// instance, which would flatter the sandbox.
	mod, err := c.rt.InstantiateModule(ctx, c.cm, newModuleConfig().WithName("").
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
		WithStdin(bytes.NewReader(stdin)).WithStdout(&stdout))
	var exit *exitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	if mod != nil {
		_ = mod.Close(ctx)
	}
	return stdout.Bytes(), err
}

// Close releases the compiled module and its runtime.
func (c *RawCommand) Close(ctx context.Context) { _ = c.rt.Close(ctx) }

// rawRuntime makes a runtime with WASI and stubs for every function the
// module imports from "aegis", and compiles wasm on it, preempted as p
// says.
func rawRuntime(ctx context.Context, wasm []byte, p RawPreemption) (wasmRuntime, compiledModule, error) {
	if !slices.Contains(rawPreemptions, p) {
		return nil, nil, fmt.Errorf("%s is not offered by %s", p, EngineName)
	}
	rt := newRuntime(ctx, nil, p == RawContextDone)
	fail := func(err error) (wasmRuntime, compiledModule, error) {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	if err := instantiateWASI(ctx, rt); err != nil {
		return fail(err)
	}
	if p == RawCountdown {
		var err error
		if wasm, err = preempt.Instrument(wasm); err != nil {
			return fail(err)
		}
		_, err = rt.NewHostModuleBuilder(preempt.ImportModule).NewFunctionBuilder().
			WithGoModuleFunction(goModuleFunc(func(_ context.Context, _ guestModule, stack []uint64) {
				stack[0] = preempt.Interval
			}), nil, []valueType{valueTypeI32}).
			Export(preempt.ImportName).Instantiate(ctx)
		if err != nil {
			return fail(err)
		}
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return fail(fmt.Errorf("raw compile: %w", err))
	}
	stubs := rt.NewHostModuleBuilder(hostModuleName)
	n := 0
	for _, imp := range cm.ImportedFunctions() {
		if mod, name, _ := imp.Import(); mod == hostModuleName {
			results := len(imp.ResultTypes())
			stubs.NewFunctionBuilder().
				WithGoModuleFunction(goModuleFunc(func(_ context.Context, _ guestModule, stack []uint64) {
					clear(stack[:results])
				}), imp.ParamTypes(), imp.ResultTypes()).
				Export(name)
			n++
		}
	}
	if n > 0 {
		if _, err := stubs.Instantiate(ctx); err != nil {
			return fail(fmt.Errorf("raw host stubs: %w", err))
		}
	}
	return rt, cm, nil
}
