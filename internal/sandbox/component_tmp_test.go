//go:build !aegis_wazero

package sandbox

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestTmpComponent(t *testing.T) {
	wasm, err := os.ReadFile("/tmp/jsx/hello.wasm")
	if err != nil {
		t.Skip(err)
	}
	env := newEnv(t)
	start := time.Now()
	m, err := env.engine.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compile %s", time.Since(start))
	start = time.Now()
	f, err := env.engine.NewFunction(context.Background(), m, FunctionConfig{App: "a", Function: "js"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new function %s", time.Since(start))
	for i := 0; i < 6; i++ {
		start = time.Now()
		resp, err := f.Invoke(context.Background(), &Request{Kind: KindHTTP, RequestID: "r", Method: "GET", Path: "/hello/x"})
		if err != nil {
			t.Fatal(err, env.logs.String())
		}
		t.Logf("invoke %s: %d %v %s", time.Since(start), resp.Status, resp.Headers, resp.Body)
	}
	t.Log(env.logs.String())
}
