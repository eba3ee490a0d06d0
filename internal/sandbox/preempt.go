//go:build aegis_wazero

package sandbox

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/aegis-platform/aegis/internal/preempt"
)

// How a timeout stops a guest. Every module is rewritten at compile time
// (package preempt) so that its code counts down at each loop header and
// function entry and calls tick every preempt.Interval of them. tick is
// where a call whose context has ended stops: it unwinds the guest with an
// exit error, the invocation reports why its context ended (ErrTimeout, or
// the caller gone), and the instance is discarded like after any failure.
// Between two ticks the guest runs machine code without leaving it, which
// is what makes loops cheap; reaching Go at each tick is also what lets the
// garbage collector stop a spinning guest's goroutine.

// instantiatePreemptModule provides preempt.ImportModule to the runtime.
func instantiatePreemptModule(ctx context.Context, r wasmRuntime) error {
	_, err := r.NewHostModuleBuilder(preempt.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(tick), nil, []api.ValueType{api.ValueTypeI32}).
		Export(preempt.ImportName).
		Instantiate(ctx)
	return err
}

// tick ends the call when its context is done, and otherwise grants the
// guest another interval. A deadline that has passed ends the call too,
// without waiting for its timer: a loaded machine may run that timer late,
// and the guest is here now. The wait for Done is then only for the timer
// to record the cause (ErrTimeout, or the caller's own deadline), which is
// what the invocation reports; the timer is already due, so it fires at
// once while this goroutine waits.
func tick(ctx context.Context, _ api.Module, stack []uint64) {
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		// wazero returns an exit error from a host function's panic as
		// the call's error, unwrapped (WASI's proc_exit works the same way).
		panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
	}
	stack[0] = preempt.Interval
}
