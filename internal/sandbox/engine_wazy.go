//go:build !aegis_wazero

package sandbox

import (
	"context"

	wazero "github.com/samyfodil/wazy"
	"github.com/samyfodil/wazy/api"
	"github.com/samyfodil/wazy/imports/wasi_snapshot_preview1"
	"github.com/samyfodil/wazy/sys"
)

// This build runs guests on wazy, a fork of wazero whose compiled code
// checks Go's own preemption request at loop headers and function entries:
// a done context ends a busy loop with no exit to Go per iteration, and a
// spinning guest lets the garbage collector stop it. Guests therefore run
// as they come, without the countdown (RATIONALE.md says why this engine,
// what it risks and what would make us switch back). Built with
// -tags aegis_wazero, the sandbox runs on wazero instead (engine_wazero.go);
// both builds pass the same containment, timeout and differential tests.

// EngineName names the engine this build runs guests on, for version
// output and benchmark reports.
const EngineName = "wazy v0.8.0"

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
	allocatedMemory    = api.LinearMemory
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
	return api.WithMemoryAllocator(ctx, m)
}

func newCompilationCache(dir string) (compilationCache, error) {
	return wazero.NewCompilationCacheWithDir(dir)
}

// newRuntime makes the compiling runtime every function shares. wazy has
// no setting for how a done context stops a call: its checks are always
// compiled in, so contextDone changes nothing here.
func newRuntime(ctx context.Context, cache compilationCache, _ bool) wasmRuntime {
	rc := wazero.NewRuntimeConfig()
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	return wazero.NewRuntimeWithConfig(ctx, rc)
}

// preemption says how this engine stops a guest whose context ended: with
// wazy, on its own. Modules run as they come and no import is added.
func preemption(bool) (instrument func([]byte) ([]byte, error), imports func(context.Context, wasmRuntime) error) {
	return func(wasm []byte) ([]byte, error) { return wasm, nil }, func(context.Context, wasmRuntime) error { return nil }
}

// rawPreemptions: wazy compiles its checks into every module, always.
var rawPreemptions = []RawPreemption{RawEngineChecks}
