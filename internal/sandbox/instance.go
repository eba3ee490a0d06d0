package sandbox

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// instance is one instantiated module. It serves one invocation at a time;
// the pool hands it to exactly one goroutine, so its fields need no lock.
type instance struct {
	mod    guestModule
	handle guestFunction // aegis_handle; nil for commands
	mem    *linearMemory
	uses   int
	stack  [1]uint64 // aegis_handle's result, reused across calls

	// current is the invocation running on this instance, nil between
	// invocations; ctx is the context of whatever runs now (an invocation
	// or _initialize), which guest sleeps wait on.
	current *invocation
	ctx     context.Context

	fn *Function
	// comp is the component behind a component function's instance; mod,
	// handle and stack are then unused.
	comp *componentInstance
}

// moduleConfig is what every instance gets: no arguments, no environment,
// no file system (wazero grants none unless asked), real clocks, crypto
// random, and sleeps that end when the invocation does.
func (f *Function) moduleConfig(inst *instance) moduleConfig {
	return newModuleConfig().
		// An empty name lets the same module be instantiated many times.
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(inst.sleep).
		WithRandSource(rand.Reader).
		WithStdout(guestStream{inst: inst, level: slog.LevelInfo}).
		WithStderr(guestStream{inst: inst, level: slog.LevelWarn})
}

// newReactor instantiates a reactor module and runs its _initialize.
func (f *Function) newReactor(ctx context.Context) (*instance, error) {
	if f.module.comp != nil {
		return f.newComponent(ctx)
	}
	inst := &instance{fn: f, mem: &linearMemory{limit: f.limits.memory}, ctx: ctx}
	cfg := f.moduleConfig(inst).WithStartFunctions()
	if f.module.hasInitialize {
		cfg = cfg.WithStartFunctions("_initialize")
	}
	mod, err := f.engine.runtime.InstantiateModule(
		withMemoryAllocator(ctx, inst.mem), f.module.compiled, cfg)
	if err != nil {
		return nil, f.instantiateError(ctx, inst, err)
	}
	inst.mod = mod
	inst.handle = mod.ExportedFunction("aegis_handle")
	return inst, nil
}

// runCommand instantiates a command module with the invocation's request
// on stdin; running _start is the invocation.
func (f *Function) runCommand(ctx context.Context, inv *invocation, stdin io.Reader) (*instance, error) {
	inst := &instance{fn: f, mem: &linearMemory{limit: f.limits.memory}, ctx: ctx, current: inv}
	cfg := f.moduleConfig(inst).
		WithStdin(stdin).
		WithStdout(commandStdout{inv: inv})
	ctx = withMemoryAllocator(withInvocation(ctx, inv), inst.mem)
	mod, err := f.engine.runtime.InstantiateModule(ctx, f.module.compiled, cfg)
	inst.current = nil
	if mod != nil {
		inst.mod = mod
	}
	return inst, err
}

// instantiateError names why an instance could not be created.
func (f *Function) instantiateError(ctx context.Context, inst *instance, err error) error {
	switch {
	case inst.mem.exceeded.Load():
		return ErrMemory
	case context.Cause(ctx) == ErrTimeout:
		return ErrTimeout
	case ctx.Err() != nil:
		return context.Cause(ctx)
	default:
		return trapf("initialize: %w", err)
	}
}

// sleep implements the guest's clock sleeps (WASI poll_oneoff). Unlike
// wazero's default it wakes when the running call's context ends, so a
// guest sleeping for an hour cannot outlive its timeout.
func (inst *instance) sleep(ns int64) {
	ctx := inst.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// initOutput logs output written outside an invocation (by _initialize).
func (inst *instance) initOutput(level slog.Level, p []byte) {
	if inst.fn == nil {
		return // a component instantiated at deploy, only to compile it
	}
	if len(p) > maxLogLine {
		p = p[:maxLogLine]
	}
	inst.fn.logger.LogAttrs(context.Background(), level, "guest output during initialization",
		slog.String(logkey.Output, string(p)))
}

func (inst *instance) close() {
	if inst.comp != nil {
		inst.comp.close()
	}
	if inst.mod != nil {
		_ = inst.mod.Close(context.Background())
	}
}

// linearMemory backs an instance's memory and enforces the function's
// memory limit. wazero asks it to grow on memory.grow; refusing makes the
// grow return -1 to the guest (Go's runtime then dies with "out of
// memory", C's malloc returns NULL), and exceeded records why the
// invocation failed.
type linearMemory struct {
	limit    uint64
	buf      []byte
	exceeded atomic.Bool
}

// Allocate implements experimental.MemoryAllocator. wazero calls it once
// per instance, so the allocator is the memory itself.
func (m *linearMemory) Allocate(_, _ uint64) allocatedMemory { return m }

// Reallocate implements allocatedMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.exceeded.Store(true)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		// Bytes past the old length were never visible to the guest and
		// are still zero, as Wasm requires of new pages.
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically, like append, so a guest growing page by page
	// does not copy its whole memory each time; never past the limit.
	newCap := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	buf := make([]byte, size, newCap)
	copy(buf, m.buf)
	m.buf = buf
	return buf
}

// Free implements allocatedMemory.
func (m *linearMemory) Free() { m.buf = nil }
