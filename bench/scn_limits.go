package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/manifest"
)

// Scenario 11: what the Denial-of-Wallet checks add to the echo round trip.
// One app has the echo function twice: "echo" with nothing, and
// "echo-limited" on a route with all three rate limits and a hard budget
// per app and per function; the limited route is called with a key that
// has its own rate and budget, the plain one with a key that has none. So
// the limited request pays every check there is (route total and
// per-address before authentication, the key's rate and the route's
// per-caller after it, three budgets before the run and their charge after
// it), the plain one only the nil checks every request pays. The limits are
// far above what the benchmark sends, so nothing is refused; the two are
// timed alternately over loopback, one request after the other.
func init() {
	register(Scenario{ID: 11, Name: "Denial-of-Wallet checks: echo with rate limits and budgets vs without", Run: runLimits})
}

const limitsEchoManifest = `app: echo
budget: { per: month, invocations: 1000000000, gb_seconds: 1000000000, mode: hard }
functions:
  echo:
    source: .
    triggers:
      - http: { method: POST, path: /echo, auth: [api-key] }
    limits: { timeout: 1s, memory: 64MiB, concurrency: 100, max_body: 64KiB, max_response: 64KiB }
  echo-limited:
    source: .
    triggers:
      - http:
          method: POST
          path: /echo-limited
          auth: [api-key]
          rate: { total: 1000000/s, per_caller: 1000000/s, per_address: 1000000/s }
    limits: { timeout: 1s, memory: 64MiB, concurrency: 100, max_body: 64KiB, max_response: 64KiB }
    budget: { per: day, invocations: 1000000000, gb_seconds: 1000000000, egress: 1TiB, mode: hard }
`

func runLimits(ctx context.Context, env *Env) ([]*Result, error) {
	calls := 1500
	if env.Quick {
		calls = 40
	}
	wasm, _, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	in, err := env.StartServer(ctx, "")
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if _, err := in.Deploy(ctx, "echo", limitsEchoManifest, wasm, "echo", "echo-limited"); err != nil {
		return nil, fmt.Errorf("deploy echo with limits: %w", err)
	}
	plainKey, err := in.Key(ctx, "bench")
	if err != nil {
		return nil, err
	}
	rate, _ := manifest.ParseRate("1000000/s")
	budget, _ := manifest.ParseQuota("1000000000/day")
	limited, err := in.Admin.CreateKeyWithOptions(ctx, "bench-limited", client.KeyOptions{Rate: rate, Budget: budget})
	if err != nil {
		return nil, err
	}
	hc := newBenchClient()
	base := strings.TrimSuffix(in.Gateway, "/")
	plain := func() error { _, err := echoPost(ctx, hc, base+"/echo", plainKey); return err }
	checked := func() error { _, err := echoPost(ctx, hc, base+"/echo-limited", limited.Key); return err }
	b, s, samples, err := alternateWarm(env.Rounds, calls, plain, checked)
	if err != nil {
		return nil, err
	}
	r := ratioResult("echo median latency, every rate limit and budget", "µs", "same function, no limit or budget", b, s, samples)
	r.RatioNote = "with / without"
	r.Target = "≤ 1.02"
	r.Met = Met(r.Ratio <= 1.02)
	r.Notes = fmt.Sprintf("median of %d sequential requests per round; 4 token buckets, 3 hard budgets checked before and charged after each run (leases, no JetStream round trip per request)", calls)
	return []*Result{r}, nil
}
