package metrics

import "github.com/prometheus/client_golang/prometheus"

// Names of the refusal counters: who could not authenticate, and what a
// function was refused.
const (
	AuthFailuresName      = "aegis_auth_failures_total"
	PermissionDenialsName = "aegis_permission_denials_total"
)

// The scheme label of aegis_auth_failures_total besides the route schemes
// (api-key, jwt, hmac) the gateway names.
const (
	SchemeAdminToken  = "admin_token"  // the admin API's bearer token
	SchemeNone        = "none"         // no credential of any accepted kind was sent
	SchemeAsyncResult = "async_result" // reading an async result without its owner's credential
)

// ReasonUnverified is the reason of a refusal that does not say which
// check failed (an async result's reader).
const ReasonUnverified = "unverified"

type securityMetrics struct {
	authFailures *prometheus.CounterVec
	denials      *prometheus.CounterVec
}

func newSecurityMetrics() securityMetrics {
	return securityMetrics{
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: AuthFailuresName,
			Help: "Requests refused with 401, at the gateway and the admin API, by scheme (api-key, jwt, hmac, admin_token, console, none) and reason (missing credentials, unknown key, expired, ...)."},
			[]string{"scheme", "reason"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: PermissionDenialsName,
			Help: "Host calls a function made without a grant for them, by app, function and capability (kv.put, events.publish, fetch, ...)."},
			[]string{"app", "function", "capability"}),
	}
}

func (s securityMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.authFailures, s.denials}
}

// AuthFailure counts one request refused with 401. reason is one of the
// auth package's fixed reasons, never a credential.
func (m *Metrics) AuthFailure(scheme, reason string) {
	if m == nil {
		return
	}
	m.security.authFailures.WithLabelValues(scheme, reason).Inc()
}

// AuthFailures is the count AuthFailure has reached, for tests.
func (m *Metrics) AuthFailures(scheme, reason string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.security.authFailures.WithLabelValues(scheme, reason))
}

// PermissionDenied counts one host call refused for want of a grant.
func (m *Metrics) PermissionDenied(app, function, capability string) {
	if m == nil {
		return
	}
	m.security.denials.WithLabelValues(app, function, capability).Inc()
}

// PermissionDenials is the count PermissionDenied has reached, for tests.
func (m *Metrics) PermissionDenials(app, function, capability string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.security.denials.WithLabelValues(app, function, capability))
}
