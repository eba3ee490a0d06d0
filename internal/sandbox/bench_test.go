package sandbox

import (
	"context"
	"testing"

	"github.com/aegis-platform/aegis/internal/testkit/cputime"
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
	reportCPU(b)
	for b.Loop() {
		if _, err := f.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawCall is the floor BenchmarkInvokeWarm is compared with: a
// call of an exported no-op in the same module straight on the engine, in
// the cheapest way it offers (RawPreemptions).
func BenchmarkRawCall(b *testing.B) {
	ctx := context.Background()
	mod, err := NewRawModule(ctx, wasmbuild.GoModule(b, "testdata/echo"), RawPreemptions()[0])
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close(ctx)
	b.ReportAllocs()
	reportCPU(b)
	for b.Loop() {
		if err := mod.Call(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeEchoExample is BenchmarkInvokeWarm on examples/echo, the
// function the platform's HTTP benchmark serves: a JSON body in, the same
// message out, with the request meta a real HTTP request carries.
func BenchmarkInvokeEchoExample(b *testing.B) { benchEchoExample(b, nil) }

// BenchmarkInvokeEchoExampleAPIKey is BenchmarkInvokeEchoExample with the
// identity every request on an API-key route carries: what the gateway's
// Go echo pays. Its identity is decoded without reflection (sdk/go's
// identityObject); compare with BenchmarkInvokeEchoExample for its cost.
func BenchmarkInvokeEchoExampleAPIKey(b *testing.B) {
	benchEchoExample(b, &Identity{Scheme: "api-key", Subject: "bench"})
}

func benchEchoExample(b *testing.B, id *Identity) {
	env := newEnv(b)
	f := env.function(b, wasmbuild.GoModule(b, "../../examples/echo"), FunctionConfig{})
	req := httpReq("/echo", `{"message":"hello, aegis"}`)
	req.Headers = map[string][]string{
		"Accept-Encoding": {"gzip"},
		"Content-Length":  {"26"},
		"Content-Type":    {"application/json"},
		"User-Agent":      {"Go-http-client/1.1"},
	}
	req.Identity = id
	ctx := context.Background()
	b.ReportAllocs()
	reportCPU(b)
	for b.Loop() {
		resp, err := f.Invoke(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.Status != 200 {
			b.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
	}
}

// reportCPU adds the process CPU time per operation to a benchmark's
// output. On a shared machine wall time per operation swings with the
// load of others; CPU time moves far less, so it is the figure to compare
// between runs. Call it after setup, with b.Loop about to run.
func reportCPU(b *testing.B) {
	start := cputime.Process()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64(cputime.Process()-start)/float64(b.N), "cpu-ns/op")
		}
	})
}
