// Package sandbox runs functions: it owns the WebAssembly engine, the on-disk
// compilation cache, the warm instance pools, the per-invocation limits
// (time, memory, response size, concurrency) and the guest ABI, the
// "aegis" import module described in docs/abi.md.
//
// A guest reaches nothing but the host functions registered here and a
// minimal WASI: no preopened directories, no environment, no arguments, no
// sockets; wall clock, monotonic clock and crypto random only. Every host
// function checks the pointers it is given, and every capability goes
// through Host, which checks the caller's grants. This package never
// decides what a grant allows, and never shows guest failures to clients:
// it returns errors for the caller to map and logs the detail.
//
// This is the only package that imports the engine: wazy by default,
// wazero with -tags aegis_wazero (engine_wazy.go, engine_wazero.go).
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aegis-platform/aegis/internal/preempt"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Config configures an Engine.
type Config struct {
	// CacheDir keeps the engine's compiled machine code on disk, so a restart
	// does not pay compilation again (about 0.7 s for a 2 MB Go module).
	// Empty means an in-memory cache only.
	CacheDir string
	// Host serves the capability host calls. Nil makes every capability
	// call fail with "unavailable"; guest logs then go to Logger.
	Host Host
	// Logger receives failures and, without a Host, guest output.
	Logger *slog.Logger

	// contextDone is for tests comparing the countdown with what it
	// replaced: modules run as they come, on a runtime with wazero's
	// WithCloseOnContextDone. wazy stops guests one way only and ignores it.
	contextDone bool
}

// Engine compiles modules and creates Functions. One Engine serves every
// function of every app: they share one runtime and its cache.
//
// Memory limits are per function, yet the engine's memory limit is per runtime.
// Rather than one runtime per distinct limit (which would compile the same
// module once per runtime), the single runtime allows the Wasm maximum and
// each instance gets a memory allocator that refuses to grow past its
// function's limit (see linearMemory). That also tells us exactly when an
// invocation failed for lack of memory, which a runtime-wide limit would
// not.
type Engine struct {
	// instrument prepares a module for the engine's way of stopping it:
	// the countdown under wazero (preempt.go), nothing under wazy.
	instrument func([]byte) ([]byte, error)
	runtime    wasmRuntime
	cache      compilationCache
	host       Host
	logger     *slog.Logger

	// imports maps module name and function name to the definition the
	// runtime provides, for Compile to check a module's imports against.
	imports map[string]map[string]functionDefinition

	mu        sync.Mutex
	functions map[*Function]struct{}
	// coldStarts counts, per app and function, the invocations that
	// created their instance on the request path (pools.go).
	coldStarts map[poolKey]*atomic.Uint64
	closed     bool
}

// New creates an Engine. Close releases it.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var cache compilationCache
	if cfg.CacheDir != "" {
		var err error
		cache, err = newCompilationCache(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", cfg.CacheDir, err)
		}
	}
	r := newRuntime(ctx, cache, cfg.contextDone)
	instrument, preemptImports := preemption(cfg.contextDone)
	e := &Engine{
		instrument: instrument,
		runtime:    r,
		cache:      cache,
		host:       cfg.Host,
		logger:     logger,
		imports:    map[string]map[string]functionDefinition{},
		functions:  map[*Function]struct{}{},
		coldStarts: map[poolKey]*atomic.Uint64{},
	}
	if err := e.instantiateImports(ctx, preemptImports); err != nil {
		_ = e.Close(ctx)
		return nil, err
	}
	return e, nil
}

func (e *Engine) instantiateImports(ctx context.Context, preemptImports func(context.Context, wasmRuntime) error) error {
	if err := instantiateWASI(ctx, e.runtime); err != nil {
		return fmt.Errorf("instantiate wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, e.runtime); err != nil {
		return fmt.Errorf("instantiate host functions: %w", err)
	}
	if err := preemptImports(ctx, e.runtime); err != nil {
		return fmt.Errorf("instantiate preemption: %w", err)
	}
	if m := e.runtime.Module(preempt.ImportModule); m != nil {
		e.imports[preempt.ImportModule] = m.ExportedFunctionDefinitions()
	}
	e.imports[wasiModuleName] = e.runtime.Module(wasiModuleName).ExportedFunctionDefinitions()
	e.imports[hostModuleName] = e.runtime.Module(hostModuleName).ExportedFunctionDefinitions()
	return nil
}

// Close closes every Function, then the runtime and the cache. It is safe
// to call more than once.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	fns := make([]*Function, 0, len(e.functions))
	for f := range e.functions {
		fns = append(fns, f)
	}
	e.mu.Unlock()

	var errs []error
	for _, f := range fns {
		errs = append(errs, f.Close(ctx))
	}
	errs = append(errs, e.runtime.Close(ctx))
	if e.cache != nil {
		errs = append(errs, e.cache.Close(ctx))
	}
	return errors.Join(errs...)
}

// Style says how a module is driven.
type Style int

const (
	// StyleReactor modules export aegis_handle, called once per invocation
	// on a warm instance (after _initialize, if exported, ran once).
	StyleReactor Style = iota + 1
	// StyleCommand modules export _start: a fresh instance per invocation,
	// the request body on stdin, the response body from stdout.
	StyleCommand
	// StyleComponent is a WebAssembly component exporting
	// wasi:http/incoming-handler (component.go), served on warm instances
	// as reactors are.
	StyleComponent
)

func (s Style) String() string {
	switch s {
	case StyleReactor:
		return "reactor"
	case StyleCommand:
		return "command"
	case StyleComponent:
		return "component"
	default:
		return fmt.Sprintf("Style(%d)", int(s))
	}
}

// Module is a compiled, validated module. It can back any number of
// Functions (versions of the same code with different configurations).
type Module struct {
	compiled      compiledModule
	style         Style
	hasInitialize bool
	minMemory     uint64 // bytes the module needs before it runs at all
	// hostImports are the "aegis" host functions the module imports,
	// sorted: what least-privilege advice reads of a module never seen
	// running.
	hostImports []string
	// comp is set for a component (StyleComponent), which has no core
	// compiled module of its own.
	comp *componentModule
}

// HostImports returns the names of the "aegis" host functions (docs/abi.md)
// the module imports, sorted. A module that does not import kv_put cannot
// write a table, whatever its grants say.
func (m *Module) HostImports() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.hostImports)
}

// Style reports whether the module is a reactor or a command.
func (m *Module) Style() Style { return m.style }

// isComponent reports whether wasm is a component (the component model's
// layer 1, what componentize-js and wasm32-wasip2 toolchains write) rather
// than a core module; Compile hands those to compileComponent.
func isComponent(wasm []byte) bool {
	return len(wasm) >= 8 && string(wasm[:4]) == "\x00asm" && string(wasm[4:8]) == "\x0d\x00\x01\x00"
}

// compileFailure says in our words why bytes of a core module did not
// compile.
func compileFailure(wasm []byte) string {
	switch {
	case len(wasm) < 8 || string(wasm[:4]) != "\x00asm":
		return "not a WebAssembly binary (it does not start with the \\0asm header)"
	case string(wasm[4:8]) != "\x01\x00\x00\x00":
		return "unsupported WebAssembly binary version (want 1)"
	default:
		return "the WebAssembly binary is malformed or uses features the sandbox does not support (the server log has the compiler's message)"
	}
}

// instrumentFailure says why bytes could not be instrumented: a reserved
// import is the author's to remove; anything else reads as a compile
// failure.
func instrumentFailure(wasm []byte, err error) string {
	if errors.Is(err, preempt.ErrReservedImport) {
		return fmt.Sprintf("module imports from %q, which is reserved for the sandbox", preempt.ImportModule)
	}
	return compileFailure(wasm)
}

// Close releases the compiled code. Functions using the module must be
// closed first.
func (m *Module) Close(ctx context.Context) error {
	if m.comp != nil {
		return m.comp.close(ctx)
	}
	return m.compiled.Close(ctx)
}

// Compile compiles and validates a module. The checks here are the ones a
// deploy must fail on rather than a request: bytes that are not Wasm,
// imports the sandbox does not provide (named, so the author can see what
// to remove), and a missing or mistyped entry point.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	if isComponent(wasm) {
		return e.compileComponent(ctx, wasm)
	}
	instrumented, err := e.instrument(wasm)
	if err != nil {
		e.logger.Warn("module cannot be instrumented", logkey.Error, err)
		return nil, fmt.Errorf("%w: %s", ErrInvalidModule, instrumentFailure(wasm, err))
	}
	cm, err := e.runtime.CompileModule(ctx, instrumented)
	if err != nil {
		// The compiler's own message names wazero internals (sections,
		// offsets, opcodes); it goes to the server log, and the deploy's
		// caller gets a message of ours.
		e.logger.Warn("module does not compile", logkey.Error, err)
		return nil, fmt.Errorf("%w: %s", ErrInvalidModule, compileFailure(wasm))
	}
	m, err := e.validate(cm)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	return m, nil
}

func (e *Engine) validate(cm compiledModule) (*Module, error) {
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		want, ok := e.imports[mod][name]
		if !ok && mod == preempt.ImportModule {
			// The wazero build's rewrite refuses these itself; the
			// namespace is reserved whichever engine runs the module.
			return nil, fmt.Errorf("%w: module imports from %q, which is reserved for the sandbox", ErrInvalidModule, mod)
		}
		if !ok {
			return nil, fmt.Errorf("%w: module %q function %q", ErrUnknownImport, mod, name)
		}
		if !slices.Equal(imp.ParamTypes(), want.ParamTypes()) || !slices.Equal(imp.ResultTypes(), want.ResultTypes()) {
			return nil, fmt.Errorf("%w: import module %q function %q has type %s, want %s",
				ErrInvalidModule, mod, name, signature(imp), signature(want))
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		return nil, fmt.Errorf("%w: module %q memory %q (modules must define their own memory)", ErrUnknownImport, mod, name)
	}

	exports := cm.ExportedFunctions()
	m := &Module{compiled: cm}
	for _, imp := range cm.ImportedFunctions() {
		if mod, name, _ := imp.Import(); mod == hostModuleName && !slices.Contains(m.hostImports, name) {
			m.hostImports = append(m.hostImports, name)
		}
	}
	slices.Sort(m.hostImports)
	_, m.hasInitialize = exports["_initialize"]
	handle, isReactor := exports["aegis_handle"]
	start, isCommand := exports["_start"]
	switch {
	case isReactor:
		if len(handle.ParamTypes()) != 0 || !slices.Equal(handle.ResultTypes(), []valueType{valueTypeI32}) {
			return nil, fmt.Errorf("%w: aegis_handle has type %s, want () -> (i32)", ErrInvalidModule, signature(handle))
		}
		if isCommand && !m.hasInitialize {
			// A Go program built without -buildmode=c-shared: its runtime
			// is only set up by _start, which would run main and exit.
			return nil, fmt.Errorf("%w: module exports aegis_handle and _start but no _initialize; build Go functions with -buildmode=c-shared", ErrInvalidModule)
		}
		m.style = StyleReactor
	case isCommand:
		if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
			return nil, fmt.Errorf("%w: _start has type %s, want () -> ()", ErrInvalidModule, signature(start))
		}
		m.style = StyleCommand
	default:
		return nil, fmt.Errorf("%w: module exports neither aegis_handle (reactor) nor _start (command)", ErrInvalidModule)
	}

	mem, ok := cm.ExportedMemories()["memory"]
	if !ok {
		return nil, fmt.Errorf("%w: module does not export its memory as \"memory\"", ErrInvalidModule)
	}
	m.minMemory = uint64(mem.Min()) * wasmPageSize
	return m, nil
}

const wasmPageSize = 65536

func signature(f functionDefinition) string {
	names := func(ts []valueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = valueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(f.ParamTypes()) + " -> " + names(f.ResultTypes())
}

// register records f so Engine.Close can close it.
func (e *Engine) register(f *Function) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errEngineClosed
	}
	e.functions[f] = struct{}{}
	return nil
}

func (e *Engine) unregister(f *Function) {
	e.mu.Lock()
	delete(e.functions, f)
	e.mu.Unlock()
}
