package sandbox

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// BenchmarkInvokeWarm measures a whole warm invocation of the echo
// fixture: slot, pool, request meta, host calls for meta, body and
// response, and the SDK's JSON work in the guest.
func BenchmarkInvokeWarm(b *testing.B) {
	env := newEnv(b)
	f := env.goFunction(b, "echo", FunctionConfig{})
	req := httpReq("/bench", "hello")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawCall is the floor BenchmarkInvokeWarm is compared with: a
// call of an exported no-op in the same module straight through wazero.
func BenchmarkRawCall(b *testing.B) {
	env := newEnv(b)
	ctx := context.Background()
	m, err := env.engine.Compile(ctx, wasmbuild.GoModule(b, "testdata/echo"))
	if err != nil {
		b.Fatal(err)
	}
	mod, err := env.engine.runtime.InstantiateModule(ctx, m.compiled,
		wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close(ctx)
	fn := mod.ExportedFunction("bench_noop")
	stack := make([]uint64, 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := fn.CallWithStack(ctx, stack); err != nil {
			b.Fatal(err)
		}
	}
}
