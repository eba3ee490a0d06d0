// Package capability owns grant checks and the host-side implementation of
// every capability a guest can reach: key-value tables, objects, events,
// outbound HTTP (fetch), calls to other functions of the same app (invoke),
// the app's secrets and function logs. Every method checks the caller's
// grants before it touches anything and denies by default; what a grant
// pattern means (its grammar and matching) is package manifest's, shared
// with deploy validation and the event bus. It never logs
// values, bodies, headers or secrets: only names (tables, keys, topics,
// hosts) and outcomes.
package capability

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/aegis-platform/aegis/internal/admission"
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// Tables is the key-value store as this package needs it. Implementations
// scope every call to app and return errors wrapping the root aegis
// sentinels (ErrNotFound for a missing key).
type Tables interface {
	Get(ctx context.Context, app, table, key string) ([]byte, error)
	Put(ctx context.Context, app, table, key string, v []byte) error
	Delete(ctx context.Context, app, table, key string) error
	Keys(ctx context.Context, app, table, prefix string) ([]string, error)
}

// Objects is the object store as this package needs it, scoped to an app.
// Keys handed to it are already normalized (see NormalizeObjectKey). Writes
// take the whole caller, not just its app, because a change also fires
// object triggers with an event stamped by its producer and trace id.
type Objects interface {
	Get(ctx context.Context, app, key string) ([]byte, error)
	Put(ctx context.Context, c *sandbox.Caller, key string, data []byte) error
	Delete(ctx context.Context, c *sandbox.Caller, key string) error
	List(ctx context.Context, app, prefix string) ([]string, error)
}

// Events publishes an event on behalf of the calling function; the
// implementation stamps the producer and trace id from c.
type Events interface {
	Publish(ctx context.Context, c *sandbox.Caller, topic string, data []byte) error
}

// LogSink is the function log: it receives the log lines of guests, and
// the host calls they were refused, so a developer finds a denial where
// they look for their function's output rather than only in the server's
// log.
type LogSink interface {
	FunctionLog(ctx context.Context, c *sandbox.Caller, level slog.Level, msg string)
	// FunctionDenied records a refused host call by its names (capability,
	// resource, reason); it is never handed a value the guest sent.
	FunctionDenied(ctx context.Context, c *sandbox.Caller, capability, resource, reason string)
}

// Resolver resolves host names for fetch. *net.Resolver satisfies it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Defaults used when the matching Config field is zero.
const (
	DefaultFetchTimeout     = 10 * time.Second
	DefaultFetchMaxResponse = 5 << 20
	DefaultFetchMaxRequest  = 1 << 20
	DefaultMaxValueSize     = 1 << 20
	// MaxLogMessage is the longest guest log message kept; longer ones are cut.
	MaxLogMessage = 4 << 10
	// MaxRedirects is how many redirects fetch follows, each one re-checked.
	MaxRedirects = 5
)

// Config wires a Host to its backends. A nil Tables, Objects or Events makes
// that capability answer ErrUnavailable; a nil Logs drops guest log lines.
// Logger is required: a denial that cannot be recorded must not go unseen.
type Config struct {
	Tables  Tables
	Objects Objects
	Events  Events
	Logs    LogSink
	Logger  *slog.Logger
	// Secrets is the vault the secret host call reads; nil makes it
	// answer ErrUnavailable (after the grant check).
	Secrets Secrets

	// Dial opens outbound connections for fetch. It is only ever called with
	// an IP:port that passed the egress checks. Default: net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver resolves fetch host names. Default: net.DefaultResolver.
	Resolver Resolver
	// RootCAs verifies the servers fetch talks to over TLS. Nil means the
	// system roots; set it for a private CA (and in tests).
	RootCAs *x509.CertPool

	FetchTimeout     time.Duration // total time of one fetch, redirects included
	FetchMaxResponse int64         // response body cap, bytes
	FetchMaxRequest  int64         // request body cap, bytes
	MaxValueSize     int           // kv value and event payload cap, bytes

	// Functions resolves and runs what invoke calls; nil makes invoke
	// answer ErrUnavailable (after the grant check).
	Functions Functions
	// HopLimit is the highest hop an invoke call may reach (default
	// DefaultHopLimit); the server sets the bus's limit.
	HopLimit int
	// Admission runs the called route's checks (rule, body cap, schemas),
	// the same one the gateway runs; nil makes one logging to Logger.
	Admission *admission.Admission
	// Metrics counts every denial (Host.deny); nil counts nothing.
	Metrics *metrics.Metrics
	// Guard is told of every denial (egress refusals included) and every
	// call stopped at the hop limit; nil tells nobody.
	Guard *guard.Guard
	// Graph, when set, counts every host call on its edge of the call
	// graph, allowed or refused (graph.go).
	Graph *callgraph.Recorder
	// Spans receives one span per host call through the Host that Traced
	// returns (spans.go); nil records none and costs nothing.
	Spans telemetry.SpanSink
}

// Host implements sandbox.Host. It is safe for concurrent use.
type Host struct {
	cfg Config
	log *slog.Logger
}

var _ sandbox.Host = (*Host)(nil)

// New validates cfg, fills in the defaults and returns a Host.
func New(cfg Config) (*Host, error) {
	if cfg.Logger == nil {
		return nil, errors.New("new capability host: Logger is required")
	}
	if cfg.FetchTimeout < 0 || cfg.FetchMaxResponse < 0 || cfg.FetchMaxRequest < 0 || cfg.MaxValueSize < 0 || cfg.HopLimit < 0 {
		return nil, fmt.Errorf("new capability host: limits must not be negative")
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.FetchMaxResponse == 0 {
		cfg.FetchMaxResponse = DefaultFetchMaxResponse
	}
	if cfg.FetchMaxRequest == 0 {
		cfg.FetchMaxRequest = DefaultFetchMaxRequest
	}
	if cfg.MaxValueSize == 0 {
		cfg.MaxValueSize = DefaultMaxValueSize
	}
	if cfg.HopLimit == 0 {
		cfg.HopLimit = DefaultHopLimit
	}
	if cfg.Admission == nil {
		cfg.Admission = admission.New(cfg.Logger, nil)
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return &Host{cfg: cfg, log: cfg.Logger}, nil
}

// Log forwards a guest log line, cut to MaxLogMessage bytes so one guest
// cannot flood the log stream with a single call.
func (h *Host) Log(ctx context.Context, c *sandbox.Caller, level slog.Level, msg string) {
	if h.cfg.Logs == nil || c == nil {
		return
	}
	h.cfg.Logs.FunctionLog(ctx, c, level, truncateUTF8(msg, MaxLogMessage))
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	// Back off over continuation bytes (10xxxxxx) to the start of a rune.
	for i > 0 && i > n-4 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
