package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/server"
)

// Scenario 15: what the guard adds to the echo round trip. Two servers in
// this process serve examples/echo: one with the guard as shipped (the
// default rules), one built without it (server.Guard.Disabled). Before
// timing, a second loopback address (127.0.0.2) probes undeclared paths on
// the guarded server until the shadow-API rule blocks it, so the check the
// timed requests (from 127.0.0.1) pay is a real lookup in a map holding a
// block, not the shortcut of an empty one. A successful echo pays every
// decision the guard makes on it: the address check, whether its route is
// disabled and its key suspended, whether its function is quarantined or
// throttled (one atomic load each while no such block is in force), and
// its invocation signal (two atomic adds on the function's spend counter).
// The two are timed alternately, one request after the other.
func init() {
	register(Scenario{ID: 15, Name: "the guard: echo with every guard decision vs a server without the guard", Run: runGuard})
}

func runGuard(ctx context.Context, env *Env) ([]*Result, error) {
	calls := 1500
	if env.Quick {
		calls = 40
	}
	wasm, manifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	start := func(adjust func(*server.Config)) (*Instance, string, error) {
		return startEchoModuleWith(ctx, env, manifest, wasm, adjust)
	}
	guarded, gkey, err := start(nil)
	if err != nil {
		return nil, err
	}
	defer guarded.Close()
	bare, bkey, err := start(func(c *server.Config) { c.Guard.Disabled = true })
	if err != nil {
		return nil, err
	}
	defer bare.Close()
	if err := blockProber(ctx, guarded.Gateway); err != nil {
		return nil, err
	}

	hc := newBenchClient()
	gURL := strings.TrimSuffix(guarded.Gateway, "/") + "/echo"
	bURL := strings.TrimSuffix(bare.Gateway, "/") + "/echo"
	without := func() error { _, err := echoPost(ctx, hc, bURL, bkey); return err }
	with := func() error { _, err := echoPost(ctx, hc, gURL, gkey); return err }
	b, s, samples, err := alternateWarm(env.Rounds, calls, without, with)
	if err != nil {
		return nil, err
	}
	r := ratioResult("echo median latency, the guard's decisions", "µs", "a server without the guard", b, s, samples)
	r.RatioNote = "with / without"
	r.Target = "≤ 1.01"
	r.Met = Met(r.Ratio <= 1.01)
	r.Notes = fmt.Sprintf("median of %d sequential requests per round; one block in force (127.0.0.2); the decisions alone are measured by go test ./internal/guard -bench 'Blocked|InvocationPath'", calls)
	return []*Result{r}, nil
}

// blockProber sends requests for undeclared paths from 127.0.0.2 until the
// guard answers 403: more than the shadow-API rule's 50 in a minute.
func blockProber(ctx context.Context, gateway string) error {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	base := strings.TrimSuffix(gateway, "/")
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/undeclared-"+strconv.Itoa(i), nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("probe from 127.0.0.2: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden {
			return nil
		}
		if i > 60 {
			time.Sleep(10 * time.Millisecond) // the rule fired; the block is being placed
		}
	}
	return fmt.Errorf("probe from 127.0.0.2: not blocked after 30s")
}
