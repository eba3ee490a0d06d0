package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/metrics"
)

// answer is one response of a flood.
type answer struct {
	status int
	hdr    http.Header
	body   []byte
}

// flood sends requests from a few loopback connections for about one
// second and returns every answer.
func flood(t *testing.T, gw, method, path, key string) []answer {
	t.Helper()
	const workers = 4 // under the probe's concurrency of 10: no 429 from the pool
	var (
		mu  sync.Mutex
		out []answer
		wg  sync.WaitGroup
	)
	end := time.Now().Add(time.Second)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				var body any
				if method == "POST" {
					body = []byte("x")
				}
				st, b, hdr := call(t, gw, method, path, key, body)
				mu.Lock()
				out = append(out, answer{st, hdr, b})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// checkLimited checks a flood's answers: at most max of them are
// admitted (status ok), at least min, and every other one is a 429 with
// Retry-After, the RateLimit fields of policy and the usual error body.
// It returns the request id of one refusal.
func checkLimited(t *testing.T, answers []answer, ok, min, max int, policy string) string {
	t.Helper()
	admitted, refused := 0, 0
	var refusedID string
	for _, a := range answers {
		switch a.status {
		case ok:
			admitted++
			if a.hdr.Get("RateLimit-Policy") == "" || a.hdr.Get("RateLimit") == "" {
				t.Errorf("admitted answer without RateLimit fields: %v", a.hdr)
			}
		case http.StatusTooManyRequests:
			refused++
			if n, err := strconv.Atoi(a.hdr.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("429 Retry-After %q, want whole seconds ≥ 1", a.hdr.Get("Retry-After"))
			}
			if got := a.hdr.Get("RateLimit-Policy"); got != policy {
				t.Errorf("429 RateLimit-Policy %q, want %q", got, policy)
			}
			name, _, _ := strings.Cut(policy, ";")
			if got := a.hdr.Get("RateLimit"); !strings.HasPrefix(got, name+";r=0;t=") {
				t.Errorf("429 RateLimit %q, want %s;r=0;t=…", got, name)
			}
			msg, id := errorBody(t, a.body)
			if msg != "rate limit exceeded" || id == "" || id != a.hdr.Get("X-Request-Id") {
				t.Errorf("429 body %s", a.body)
			}
			refusedID = id
		default:
			t.Errorf("answer %d %s, want %d or 429", a.status, a.body, ok)
		}
	}
	t.Logf("%d requests: %d admitted, %d refused", len(answers), admitted, refused)
	if admitted < min || admitted > max {
		t.Errorf("%d admitted, want between %d and %d", admitted, min, max)
	}
	if refused == 0 {
		t.Fatal("nothing refused: the flood was not limited")
	}
	return refusedID
}

// The bounds of a flood of about one second against N/s with a burst of
// B: a token bucket admits at most B + N·T over T seconds. The client
// stops sending after one second, but the server sees those requests
// over a slightly different span (the first arrives after its
// connection is made, the last ones were sent just before the end), so
// T is a little over one second; N more (T up to two seconds) keeps a
// slow machine from failing the test without letting a limit that does
// not hold pass: an unlimited flood from loopback makes hundreds.

// TestKeyRateLimit: a key limited to 5/s with a burst of 5, flooded, gets
// at most 5 + 5 (+5) answers and 429s for the rest.
func TestKeyRateLimit(t *testing.T) {
	in, _ := sharedServer(t)
	name := keyName("rated")
	code, out, errs := aegisCLI(t, in, "keys", "create", name, "--rate", "5/s", "--burst", "5", "--budget", "1000/day")
	key := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(key, "aegis_") {
		t.Fatalf("keys create: exit %d %q %s", code, out, errs)
	}
	const n, b = 5, 5
	id := checkLimited(t, flood(t, in.gateway, "POST", "/probe/echo", key), 200, b, b+n+n, `"key";q=5;w=1`)

	lines := in.logs.Lines("rate limit exceeded", id)
	if len(lines) != 1 {
		t.Fatalf("want one security line for refusal %s, got %d", id, len(lines))
	}
	if l := lines[0]; l["security"] != true || l["reason"] != "key rate" || l["key_name"] != name || l["app"] != "probe" || l["remote"] == nil {
		t.Errorf("security line %v", l)
	}
	if in.srv.Metrics().RateLimitedCount("probe", "probe", metrics.LimitKey) < 1 {
		t.Error("aegis_rate_limited_total{limit=\"key\"} not counted")
	}
	// The refusals count as rejected in the key's usage.
	eventually(t, 5*time.Second, "the refusals in aegis usage", func() bool {
		rows, err := in.admin.Usage(context.Background(), client.UsageQuery{App: "probe"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Function == "probe" && r.Caller == "key:"+name && r.Rejected > 0 && r.Invocations >= b {
				return true
			}
		}
		return false
	})

	// Another key is not limited by this one's bucket.
	_, other := sharedServer(t)
	if st, body, hdr := call(t, in.gateway, "POST", "/probe/echo", other, []byte("x")); st != 200 || hdr.Get("RateLimit") != "" {
		t.Fatalf("unlimited key: %d %s %v", st, body, hdr)
	}

	// The key's limits are listed, in text and in JSON.
	code, out, _ = aegisCLI(t, in, "keys", "list")
	if code != 0 || !strings.Contains(out, "5/s (burst 5)") || !strings.Contains(out, "1000/day") {
		t.Errorf("keys list:\n%s", out)
	}
	code, out, _ = aegisCLI(t, in, "keys", "list", "-o", "json")
	var keys []struct{ Name, Rate, Burst, Budget string }
	if err := json.Unmarshal([]byte(out), &keys); code != 0 || err != nil {
		t.Fatalf("keys list -o json: %d %v", code, err)
	}
	found := false
	for _, k := range keys {
		if k.Name == name {
			found = k.Rate == "5/s" && k.Burst == "5" && k.Budget == "1000/day"
		}
	}
	if !found {
		t.Errorf("keys list -o json lacks %s with its limits:\n%s", name, out)
	}
}

// TestRouteRateLimits: a route's per-address rate turns an
// unauthenticated flood away before its credentials are checked, and a
// public route's total holds.
func TestRouteRateLimits(t *testing.T) {
	in, _ := sharedServer(t)
	deployProbe(t, in, "testdata/ratelimit.yaml")

	// No credentials: 401 while the address has tokens, then 429. The
	// 401s are bounded like admissions: the limit runs first.
	id := checkLimited(t, flood(t, in.gateway, "POST", "/rl/address/echo", ""), 401, 5, 5+5+5, `"per_address";q=5;w=1`)
	lines := in.logs.Lines("rate limit exceeded", id)
	if len(lines) != 1 || lines[0]["reason"] != "route per_address" || lines[0]["remote"] == nil {
		t.Errorf("security line for %s: %v", id, lines)
	}
	if in.srv.Metrics().RateLimitedCount("ratelimit", "by-address", metrics.LimitPerAddress) < 1 {
		t.Error("per_address refusals not counted")
	}

	checkLimited(t, flood(t, in.gateway, "GET", "/rl/total/echo", ""), 200, 4, 4+4+4, `"total";q=4;w=1`)
	if in.srv.Metrics().RateLimitedCount("ratelimit", "by-total", metrics.LimitTotal) < 1 {
		t.Error("total refusals not counted")
	}
}
