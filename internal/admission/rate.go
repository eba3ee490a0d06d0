package admission

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/ratelimit"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Rate limits are the gateway's alone: a request from outside is counted
// against its route's total and per-address rates before it is
// authenticated (LimitRequest), so a flood or a brute force costs a map
// lookup rather than a verification, and against its API key's rate and
// the route's per-caller rate after (LimitCaller). A call between
// functions (invoke) is the app's own traffic and goes through neither.
//
// The buckets live in this server's memory (docs/limits.md: counted per
// server), outside the immutable route table: a route's buckets are kept
// by app, method and path pattern, so a redeploy that leaves its rate as
// it was keeps counting where it was, and one that changes it starts
// afresh.

// The reasons a rate refusal is logged with, naming the limit.
const (
	ReasonKeyRate         = "key rate"
	ReasonRouteTotal      = "route total"
	ReasonRoutePerCaller  = "route per_caller"
	ReasonRoutePerAddress = "route per_address"
)

const (
	// maxKeyBuckets bounds the API key buckets; keys are made by
	// operators, so this is far above what a server sees.
	maxKeyBuckets = 10 * ratelimit.DefaultMaxKeys
	// maxRouteKeyedBuckets bounds each route's per-caller and per-address
	// buckets, which clients choose the keys of.
	maxRouteKeyedBuckets = ratelimit.DefaultMaxKeys
	// ipv6PrefixBytes: an IPv6 client is counted by its /64.
	ipv6PrefixBytes = 8
)

// rates holds every bucket of one server.
type rates struct {
	now  func() time.Time
	keys *ratelimit.Set // by API key name

	// routes is copied on write (a route's first limited request after a
	// deploy) so the hot path reads it without a lock.
	mu     sync.Mutex
	routes atomic.Pointer[map[routeKey]*routeLimits]
}

type routeKey struct{ app, method, path string }

// routeLimits are one route's buckets, for the rate they were made for.
type routeLimits struct {
	rate                            manifest.RouteRate
	total                           *ratelimit.Bucket
	perCaller, perAddress           *ratelimit.Set
	totalLim, callerLim, addressLim ratelimit.Limit
}

func newRates() *rates {
	return &rates{now: time.Now, keys: ratelimit.NewSet(metrics.LimitKey, maxKeyBuckets)}
}

// route returns rt's buckets, made on first use or when its rate changed.
func (r *rates) route(rt *route.Route) *routeLimits {
	k := routeKey{rt.App, rt.Method, rt.Path}
	if m := r.routes.Load(); m != nil {
		if l := (*m)[k]; l != nil && l.rate == *rt.Rate {
			return l
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.routes.Load()
	if old != nil {
		if l := (*old)[k]; l != nil && l.rate == *rt.Rate {
			return l
		}
	}
	l := newRouteLimits(*rt.Rate)
	next := make(map[routeKey]*routeLimits, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[k] = l
	r.routes.Store(&next)
	return l
}

func newRouteLimits(rr manifest.RouteRate) *routeLimits {
	l := &routeLimits{rate: rr,
		totalLim:   ratelimit.Limit{Rate: rr.Total},
		callerLim:  ratelimit.Limit{Rate: rr.PerCaller},
		addressLim: ratelimit.Limit{Rate: rr.PerAddress},
	}
	if !rr.Total.IsZero() {
		l.total = ratelimit.NewBucket(metrics.LimitTotal, l.totalLim)
	}
	if !rr.PerCaller.IsZero() {
		l.perCaller = ratelimit.NewSet(metrics.LimitPerCaller, maxRouteKeyedBuckets)
	}
	if !rr.PerAddress.IsZero() {
		l.perAddress = ratelimit.NewSet(metrics.LimitPerAddress, maxRouteKeyedBuckets)
	}
	return l
}

// LimitRequest counts a request from outside against its route's
// per-address rate, then its total, before the request is authenticated.
// It returns the decision to show the client (zero when the route has no
// such rate) and, when a limit refused, the refusal, already logged and
// counted: answer it with WriteRateLimited.
func (a *Admission) LimitRequest(ctx context.Context, req *Request) (ratelimit.Decision, *Refusal) {
	rt := req.Route
	if rt.Rate == nil || (rt.Rate.PerAddress.IsZero() && rt.Rate.Total.IsZero()) {
		return ratelimit.Decision{}, nil
	}
	l := a.rates.route(rt)
	now := a.rates.now()
	var shown ratelimit.Decision
	if l.perAddress != nil {
		d := takeAddress(l.perAddress, req.Remote, l.addressLim, now)
		if !d.Allowed {
			return d, a.rateRefused(ctx, req, d, ReasonRoutePerAddress, metrics.LimitPerAddress)
		}
		shown = d
	}
	if l.total != nil {
		d := l.total.TakeAt(now)
		if !d.Allowed {
			return d, a.rateRefused(ctx, req, d, ReasonRouteTotal, metrics.LimitTotal)
		}
		shown = shown.Tighter(d)
	}
	return shown, nil
}

// LimitCaller counts an authenticated request against its API key's own
// rate, then its route's per-caller rate (the caller being Request.Origin:
// the key, the JWT's issuer and subject, the webhook secret), like
// LimitRequest.
func (a *Admission) LimitCaller(ctx context.Context, req *Request) (ratelimit.Decision, *Refusal) {
	ident := req.Identity
	if ident == nil {
		return ratelimit.Decision{}, nil
	}
	keyRate := ident.Scheme == manifest.AuthAPIKey && !ident.Rate.IsZero()
	perCaller := req.Route.Rate != nil && !req.Route.Rate.PerCaller.IsZero()
	if !keyRate && !perCaller {
		return ratelimit.Decision{}, nil
	}
	now := a.rates.now()
	var shown ratelimit.Decision
	if keyRate {
		d := a.rates.keys.TakeAt(ident.Subject, ratelimit.Limit{Rate: ident.Rate, Burst: ident.Burst}, now)
		if !d.Allowed {
			return d, a.rateRefused(ctx, req, d, ReasonKeyRate, metrics.LimitKey)
		}
		shown = d
	}
	if perCaller {
		l := a.rates.route(req.Route)
		origin := req.Origin
		if origin == "" {
			origin = sandbox.OriginOf(ident)
		}
		d := l.perCaller.TakeAt(origin, l.callerLim, now)
		if !d.Allowed {
			return d, a.rateRefused(ctx, req, d, ReasonRoutePerCaller, metrics.LimitPerCaller, slog.String(logkey.RateKey, origin))
		}
		shown = shown.Tighter(d)
	}
	return shown, nil
}

// takeAddress counts remote ("host:port", as net/http gives it) in set:
// an IPv4 client by its address, an IPv6 one by its /64, which one
// subscriber typically holds whole. The key is the address's bytes, so a
// known client allocates nothing.
func takeAddress(set *ratelimit.Set, remote string, l ratelimit.Limit, now time.Time) ratelimit.Decision {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		addr = ap.Addr()
	} else if addr, err = netip.ParseAddr(remote); err != nil {
		return set.TakeAt(remote, l, now) // not an address (a test's pipe): counted as it is
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return set.TakeBytesAt(b[:], l, now)
	}
	b := addr.As16()
	return set.TakeBytesAt(b[:ipv6PrefixBytes], l, now)
}

// rateRefused builds, logs and counts a rate limit refusal.
func (a *Admission) rateRefused(ctx context.Context, req *Request, d ratelimit.Decision, reason, limit string, extra ...slog.Attr) *Refusal {
	rt := req.Route
	a.metrics.RateLimited(rt.App, rt.Function, limit)
	r := &Refusal{Step: StepRate, Status: http.StatusTooManyRequests, Message: httperr.MsgRateLimited,
		Reason: reason, Kind: aegis.ErrLimitExceeded, Rate: d}
	if ident := req.Identity; ident != nil && ident.Scheme == manifest.AuthAPIKey {
		extra = append(extra, slog.String(logkey.KeyName, ident.Subject))
	}
	return a.refuse(ctx, req, r, extra...)
}

// WriteRateLimited answers a rate limit refusal: 429 with Retry-After,
// RateLimit-Policy and RateLimit, and the usual error body.
func WriteRateLimited(w http.ResponseWriter, r *Refusal, reqID string) {
	r.Rate.SetHeaders(w.Header())
	httperr.Write(w, r.Status, r.Message, reqID)
}
