package sandbox

import (
	"context"
	"testing"

	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

type poolRow struct {
	cold uint64
	warm int
}

func poolStats(e *Engine) map[string]poolRow {
	out := map[string]poolRow{}
	e.PoolStats(func(app, function string, cold uint64, warm int) {
		out[app+"/"+function] = poolRow{cold, warm}
	})
	return out
}

// A cold start is an invocation that made its instance; the instance made
// at deploy is not one, and the count outlives the version.
func TestPoolStatsCountColdStartsAcrossVersions(t *testing.T) {
	env := newEnv(t)
	wasm := wasmbuild.GoModule(t, "testdata/echo")
	v1 := env.function(t, wasm, FunctionConfig{App: "shop", Function: "orders", Version: "v1"})
	if got := poolStats(env.engine)["shop/orders"]; got != (poolRow{0, 1}) {
		t.Fatalf("after deploy: %+v, want no cold start and one warm instance", got)
	}
	mustInvoke(t, v1, httpReq("/", "a"))
	if got := poolStats(env.engine)["shop/orders"]; got != (poolRow{0, 1}) {
		t.Fatalf("after a warm call: %+v", got)
	}
	// Two at once: the second finds no idle instance and makes one.
	i1, err := v1.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i2, err := v1.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v1.release(i1)
	v1.release(i2)
	if got := poolStats(env.engine)["shop/orders"]; got != (poolRow{1, 2}) {
		t.Fatalf("after two at once: %+v, want one cold start and two warm", got)
	}
	_ = v1.Close(context.Background())
	env.function(t, wasm, FunctionConfig{App: "shop", Function: "orders", Version: "v2"})
	if got := poolStats(env.engine)["shop/orders"]; got != (poolRow{1, 1}) {
		t.Errorf("after the next version: %+v, want the cold start kept and v2's one instance", got)
	}
}
