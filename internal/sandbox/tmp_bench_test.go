package sandbox

import (
	"context"
	"testing"
)

func BenchmarkTmpHandleDirect(b *testing.B) {
	env := newEnv(b)
	f := env.goFunction(b, "echo", FunctionConfig{})
	req := httpReq("/bench", "hello")
	inst := f.idle[0]
	for _, withTimeout := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "timeout"}[withTimeout], func(b *testing.B) {
			for b.Loop() {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if withTimeout {
					ctx, cancel = context.WithTimeout(ctx, 5e9)
				}
				inv := &invocation{fn: f, host: env.host, req: req, outputLeft: maxGuestOutput}
				inv.ctx = withInvocation(ctx, inv)
				inst.current = inv
				if err := inst.handle.CallWithStack(inv.ctx, inst.stack[:]); err != nil || inst.stack[0] != 0 {
					b.Fatal(err)
				}
				cancel()
			}
		})
	}
}
