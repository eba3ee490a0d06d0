package admission

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/ratelimit"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/manifest"
)

func perSec(n int64) manifest.Rate { return manifest.Rate{Count: n, Per: time.Second} }

// rateHarness is an Admission on a clock the test moves.
type rateHarness struct {
	a    *Admission
	logs *logbuf.Buffer
	m    *metrics.Metrics
	now  time.Time
}

func newRateHarness() *rateHarness {
	h := &rateHarness{logs: logbuf.New(), m: metrics.New(), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	h.a = New(slog.New(slog.NewJSONHandler(h.logs, nil)), h.m)
	h.a.rates.now = func() time.Time { return h.now }
	return h
}

func limited(rr manifest.RouteRate) *route.Route {
	return &route.Route{Method: "GET", Path: "/things/{id}", App: "shop", Function: "things", Rate: &rr}
}

func apiKey(name string, rate manifest.Rate, burst int) *sandbox.Identity {
	return &sandbox.Identity{Scheme: manifest.AuthAPIKey, Subject: name, Rate: rate, Burst: burst}
}

// wantRefused checks a refusal and its one security line.
func (h *rateHarness) wantRefused(t *testing.T, r *Refusal, reason, limit string) map[string]any {
	t.Helper()
	if r == nil {
		t.Fatalf("admitted, want refused by %s", reason)
	}
	if r.Step != StepRate || r.Status != http.StatusTooManyRequests || !errors.Is(r, aegis.ErrLimitExceeded) ||
		r.Reason != reason || r.Message != "rate limit exceeded" || r.Rate.Allowed || r.Rate.RetryAfter < 1 {
		t.Fatalf("refusal %+v, want a 429 for %q with Retry-After", r, reason)
	}
	lines := h.logs.Lines(`"reason":"` + reason + `"`)
	if len(lines) == 0 {
		t.Fatalf("no security line for %q:\n%s", reason, h.logs)
	}
	l := lines[len(lines)-1]
	if l["msg"] != "rate limit exceeded" || l[logkey.Security] != true || l[logkey.App] != "shop" || l[logkey.Function] != "things" {
		t.Errorf("log line %v", l)
	}
	if h.m.RateLimitedCount("shop", "things", limit) < 1 {
		t.Errorf("refusal by %s not counted", limit)
	}
	return l
}

func TestRoutePerAddress(t *testing.T) {
	h := newRateHarness()
	rt := limited(manifest.RouteRate{PerAddress: perSec(2)})
	ctx := context.Background()
	req := func(remote string) *Request {
		return &Request{Route: rt, Method: "GET", RequestID: "r", Remote: remote}
	}
	for range 2 {
		if d, r := h.a.LimitRequest(ctx, req("192.0.2.1:1000")); r != nil || !d.Allowed || d.Name != "per_address" {
			t.Fatalf("within the rate: %+v %+v", d, r)
		}
	}
	// Another port of the same address is the same client.
	_, r := h.a.LimitRequest(ctx, req("192.0.2.1:2000"))
	l := h.wantRefused(t, r, ReasonRoutePerAddress, metrics.LimitPerAddress)
	if l[logkey.Remote] != "192.0.2.1:2000" {
		t.Errorf("log line names remote %v", l[logkey.Remote])
	}
	// Another address has its own bucket.
	if _, r := h.a.LimitRequest(ctx, req("192.0.2.2:1000")); r != nil {
		t.Fatalf("another address refused: %+v", r)
	}
	// IPv6 clients are counted by their /64.
	for i, remote := range []string{"[2001:db8:1:2::1]:80", "[2001:db8:1:2::ffff]:80", "[2001:db8:1:2:aaaa::1]:80"} {
		_, r := h.a.LimitRequest(ctx, req(remote))
		if (i < 2) != (r == nil) {
			t.Fatalf("IPv6 request %d from %s: refusal %+v", i, remote, r)
		}
	}
	// Half a second later one token is back for each.
	h.now = h.now.Add(500 * time.Millisecond)
	if _, r := h.a.LimitRequest(ctx, req("192.0.2.1:3000")); r != nil {
		t.Fatalf("after the refill: %+v", r)
	}
}

func TestRouteTotal(t *testing.T) {
	h := newRateHarness()
	rt := limited(manifest.RouteRate{Total: perSec(3), PerAddress: perSec(100)})
	ctx := context.Background()
	for i := range 3 {
		remote := "192.0.2." + string(rune('1'+i)) + ":1"
		d, r := h.a.LimitRequest(ctx, &Request{Route: rt, Remote: remote})
		if r != nil {
			t.Fatalf("request %d refused: %+v", i, r)
		}
		// The tighter of the two is shown: the total has fewer left.
		if d.Name != "total" || d.Remaining != int64(2-i) {
			t.Fatalf("request %d shows %+v, want the total with %d left", i, d, 2-i)
		}
	}
	_, r := h.a.LimitRequest(ctx, &Request{Route: rt, Remote: "192.0.2.9:1"})
	h.wantRefused(t, r, ReasonRouteTotal, metrics.LimitTotal)
}

func TestKeyRateAndPerCaller(t *testing.T) {
	h := newRateHarness()
	ctx := context.Background()
	rt := limited(manifest.RouteRate{PerCaller: perSec(5)})
	key := apiKey("mobile", perSec(1), 2)
	req := &Request{Route: rt, Identity: key, Origin: "key:mobile", RequestID: "r", Remote: "127.0.0.1:1"}
	for i := range 2 {
		d, r := h.a.LimitCaller(ctx, req)
		if r != nil || d.Name != "key" {
			t.Fatalf("request %d: %+v %+v, want admitted showing the key's rate", i, d, r)
		}
	}
	_, r := h.a.LimitCaller(ctx, req)
	if l := h.wantRefused(t, r, ReasonKeyRate, metrics.LimitKey); l[logkey.KeyName] != "mobile" {
		t.Errorf("key rate line names key %v", l[logkey.KeyName])
	}
	if r.Rate.Name != "key" || r.Rate.Policy[0] != `"key";q=1;w=1` {
		t.Errorf("refusal's policy %+v", r.Rate)
	}

	// A JWT caller is counted by issuer and subject on the route.
	jwt := &sandbox.Identity{Scheme: manifest.AuthJWT, Issuer: "https://id.example", Subject: "u1"}
	for range 5 {
		if _, r := h.a.LimitCaller(ctx, &Request{Route: rt, Identity: jwt}); r != nil {
			t.Fatalf("within per_caller: %+v", r)
		}
	}
	_, r = h.a.LimitCaller(ctx, &Request{Route: rt, Identity: jwt})
	if l := h.wantRefused(t, r, ReasonRoutePerCaller, metrics.LimitPerCaller); l[logkey.RateKey] != "jwt:https://id.example#u1" {
		t.Errorf("per_caller line names caller %v", l[logkey.RateKey])
	}
	other := &sandbox.Identity{Scheme: manifest.AuthJWT, Issuer: "https://id.example", Subject: "u2"}
	if _, r := h.a.LimitCaller(ctx, &Request{Route: rt, Identity: other}); r != nil {
		t.Fatalf("another caller refused: %+v", r)
	}
}

// TestRouteBucketsSurviveRedeploy: the same rate on a rebuilt route keeps
// counting; a changed rate starts afresh.
func TestRouteBucketsSurviveRedeploy(t *testing.T) {
	h := newRateHarness()
	ctx := context.Background()
	first := limited(manifest.RouteRate{Total: perSec(1)})
	if _, r := h.a.LimitRequest(ctx, &Request{Route: first}); r != nil {
		t.Fatal(r)
	}
	again := limited(manifest.RouteRate{Total: perSec(1)}) // a new table, the same route
	if _, r := h.a.LimitRequest(ctx, &Request{Route: again}); r == nil {
		t.Fatal("a redeploy of the same rate reset the bucket")
	}
	changed := limited(manifest.RouteRate{Total: perSec(2)})
	if _, r := h.a.LimitRequest(ctx, &Request{Route: changed}); r != nil {
		t.Fatalf("a changed rate kept the old bucket: %+v", r)
	}
	otherApp := limited(manifest.RouteRate{Total: perSec(2)})
	otherApp.App = "other"
	if _, r := h.a.LimitRequest(ctx, &Request{Route: otherApp}); r != nil {
		t.Fatalf("another app's route shares a bucket: %+v", r)
	}
}

func TestUnlimitedShowsNothing(t *testing.T) {
	h := newRateHarness()
	ctx := context.Background()
	rt := &route.Route{Method: "GET", Path: "/", App: "shop", Function: "things"}
	d, r := h.a.LimitRequest(ctx, &Request{Route: rt, Remote: "127.0.0.1:1"})
	d2, r2 := h.a.LimitCaller(ctx, &Request{Route: rt, Identity: apiKey("plain", manifest.Rate{}, 0)})
	if r != nil || r2 != nil || !d.IsZero() || !d2.IsZero() {
		t.Fatalf("an unlimited request: %+v %+v %+v %+v", d, r, d2, r2)
	}
}

func TestWriteRateLimited(t *testing.T) {
	h := newRateHarness()
	rt := limited(manifest.RouteRate{Total: manifest.Rate{Count: 1, Per: time.Minute}})
	h.a.LimitRequest(context.Background(), &Request{Route: rt})
	_, r := h.a.LimitRequest(context.Background(), &Request{Route: rt})
	w := httptest.NewRecorder()
	WriteRateLimited(w, r, "req-1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" || w.Header().Get("RateLimit-Policy") != `"total";q=1;w=60` ||
		w.Header().Get("RateLimit") != `"total";r=0;t=60` || w.Body.String() != `{"error":"rate limit exceeded","request_id":"req-1"}`+"\n" {
		t.Fatalf("answer %d %v %s", w.Code, w.Header(), w.Body)
	}
}

// TestRateChecksAllocateNothing: on the hot path (a known key, address and
// caller) the checks allocate nothing.
func TestRateChecksAllocateNothing(t *testing.T) {
	a := New(nil, nil)
	ctx := context.Background()
	huge := manifest.Rate{Count: manifest.MaxRateCount, Per: time.Second}
	req := &Request{Route: limited(manifest.RouteRate{Total: huge, PerAddress: huge, PerCaller: huge}),
		Identity: apiKey("k", huge, 0), Origin: "key:k", Remote: "192.0.2.1:4000"}
	check := func() {
		if _, r := a.LimitRequest(ctx, req); r != nil {
			t.Fatal(r)
		}
		if _, r := a.LimitCaller(ctx, req); r != nil {
			t.Fatal(r)
		}
	}
	check()
	if n := testing.AllocsPerRun(100, check); n != 0 {
		t.Fatalf("the rate checks allocate %v times per request", n)
	}
}

// BenchmarkRateChecks is what the rate limits add to a request on a route
// with all three rates, from a key with its own: the checks before and
// after authentication. Run with -benchmem: 0 allocs/op.
func BenchmarkRateChecks(b *testing.B) {
	a := New(nil, nil)
	ctx := context.Background()
	huge := manifest.Rate{Count: manifest.MaxRateCount, Per: time.Second}
	req := &Request{Route: limited(manifest.RouteRate{Total: huge, PerAddress: huge, PerCaller: huge}),
		Identity: apiKey("k", huge, 0), Origin: "key:k", Remote: "192.0.2.1:4000"}
	b.ReportAllocs()
	for b.Loop() {
		a.LimitRequest(ctx, req)
		a.LimitCaller(ctx, req)
	}
}

// BenchmarkRateChecksUnlimited is the cost on a route and key without
// rates: what every other request pays.
func BenchmarkRateChecksUnlimited(b *testing.B) {
	a := New(nil, nil)
	ctx := context.Background()
	req := &Request{Route: &route.Route{App: "a", Function: "f"}, Identity: apiKey("k", manifest.Rate{}, 0), Remote: "192.0.2.1:4000"}
	b.ReportAllocs()
	for b.Loop() {
		a.LimitRequest(ctx, req)
		a.LimitCaller(ctx, req)
	}
}

// FuzzTakeAddress: whatever net/http hands over as the remote address, it
// is counted without a panic, one bucket per address whatever the port.
func FuzzTakeAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:443", "[2001:db8::1%eth0]:1", "[::ffff:192.0.2.1]:9", "pipe", "", ":", "[]:1", "1.2.3.4"} {
		f.Add(s, uint16(8080))
	}
	f.Fuzz(func(t *testing.T, remote string, port uint16) {
		set := ratelimit.NewSet("per_address", 16)
		l := ratelimit.Limit{Rate: manifest.Rate{Count: 1, Per: time.Hour}}
		now := time.Unix(1, 0)
		if d := takeAddress(set, remote, l, now); !d.Allowed {
			t.Fatalf("first request from %q refused", remote)
		}
		again := remote
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			again = netip.AddrPortFrom(ap.Addr(), port).String()
		}
		if d := takeAddress(set, again, l, now); d.Allowed {
			t.Fatalf("%q after %q admitted: not the same bucket", again, remote)
		}
	})
}
