//go:build aegis_wazero

package sandbox

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/aegis-platform/aegis/internal/preempt"
)

// This build (-tags aegis_wazero) runs guests on upstream wazero, the
// engine kept one build tag away from the default (engine_wazy.go). wazero
// leaves machine code for Go at every loop header when a call may be
// stopped by its context, so modules are rewritten with the countdown of
// package preempt instead and run with that setting off (preempt.go).

// EngineName names the engine this build runs guests on, for version
// output and benchmark reports.
const EngineName = "wazero v1.12.0"

// The engine's types under names of the sandbox's own, so the rest of the
// package reads the same whichever engine it is built with.
type (
	wasmRuntime        = wazero.Runtime
	compiledModule     = wazero.CompiledModule
	compilationCache   = wazero.CompilationCache
	moduleConfig       = wazero.ModuleConfig
	guestModule        = api.Module
	guestMemory        = api.Memory
	guestFunction      = api.Function
	valueType          = api.ValueType
	functionDefinition = api.FunctionDefinition
	goModuleFunc       = api.GoModuleFunc
	goModuleFunction   = api.GoModuleFunction
	allocatedMemory    = experimental.LinearMemory
	exitError          = sys.ExitError
)

const (
	valueTypeI32       = api.ValueTypeI32
	valueTypeExternref = api.ValueTypeExternref
	wasiModuleName     = wasi_snapshot_preview1.ModuleName
)

func newModuleConfig() moduleConfig    { return wazero.NewModuleConfig() }
func valueTypeName(t valueType) string { return api.ValueTypeName(t) }
func encodeI32(v int32) uint64         { return api.EncodeI32(v) }
func instantiateWASI(ctx context.Context, r wasmRuntime) error {
	_, err := wasi_snapshot_preview1.Instantiate(ctx, r)
	return err
}

func withMemoryAllocator(ctx context.Context, m *linearMemory) context.Context {
	return experimental.WithMemoryAllocator(ctx, m)
}

func newCompilationCache(dir string) (compilationCache, error) {
	return wazero.NewCompilationCacheWithDir(dir)
}

// newRuntime makes the compiling runtime every function shares.
// WithCloseOnContextDone stays off unless a test asks for it: it would make
// every loop header leave machine code for Go and come back (about 30 ns
// each, and a Go guest passes thousands per request). Timeouts stop guests
// through the countdown every module is compiled with instead.
func newRuntime(ctx context.Context, cache compilationCache, contextDone bool) wasmRuntime {
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(contextDone)
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	return wazero.NewRuntimeWithConfig(ctx, rc)
}

// preemption says how this engine stops a guest whose context ended: the
// countdown rewritten into every module and the host function it calls, or
// nothing of ours when wazero's own close-on-context-done does it.
func preemption(contextDone bool) (instrument func([]byte) ([]byte, error), imports func(context.Context, wasmRuntime) error) {
	if contextDone {
		return func(wasm []byte) ([]byte, error) { return wasm, nil }, func(context.Context, wasmRuntime) error { return nil }
	}
	return preempt.Instrument, instantiatePreemptModule
}

// rawPreemptions: wazero can run a module unstoppable, with wazero's own
// close-on-context-done, or rewritten with the countdown as the sandbox
// runs it (last: NewRawCommand preempts like the sandbox).
var rawPreemptions = []RawPreemption{RawNoPreemption, RawContextDone, RawCountdown}
