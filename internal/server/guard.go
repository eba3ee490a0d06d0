package server

import (
	"context"
	"fmt"
	"time"

	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
)

// Guard configures the guard (docs/guard.md). Its zero value runs the
// default rules: brute force and shadow-API hunting, on without
// configuration.
type Guard struct {
	// Rules replaces guard.DefaultRules when not nil: tests lower or
	// raise thresholds and durations here. An empty, non-nil slice turns
	// the guard's counting off (blocks already shared are still enforced).
	Rules []guard.Rule
	// Refresh is how often this server reads the blocks every server
	// shares (default guard.DefaultRefresh, one second): how long a block
	// placed or lifted elsewhere takes to reach it.
	Refresh time.Duration
	// TrustedProxies are CIDRs (or addresses) of the proxies whose
	// X-Forwarded-For names the client the guard counts and blocks
	// (--trusted-proxy); none by default: the connection's address.
	TrustedProxies []string
	// Disabled runs no guard at all: no check, no signal, no bucket. It
	// is the baseline of bench scenario 15; no flag sets it.
	Disabled bool
}

func (c Guard) validate() error {
	for _, r := range c.Rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("configure server: guard %w", err)
		}
	}
	if _, err := guard.ParseProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("configure server: --trusted-proxy: %w", err)
	}
	if c.Refresh < 0 {
		return fmt.Errorf("configure server: guard refresh must not be negative")
	}
	return nil
}

// openGuard opens the shared blocks' bucket and starts the guard.
func (s *Server) openGuard(ctx context.Context) error {
	if s.cfg.Guard.Disabled {
		return nil
	}
	// One key per block, each removed by its own TTL when the block
	// expires (the guard enforces the block's expiry itself as well).
	bucket, err := s.node.Bucket(ctx, guard.Bucket, jetstream.BucketOptions{History: 1, KeyTTLs: true,
		Description: "guard blocks every server enforces, one key per block"})
	if err != nil {
		return err
	}
	if s.proxies, err = guard.ParseProxies(s.cfg.Guard.TrustedProxies); err != nil {
		return err
	}
	s.guard = guard.New(guard.Config{Store: bucket, Logger: s.log, Rules: s.cfg.Guard.Rules,
		Refresh: s.cfg.Guard.Refresh, OnBlock: s.metrics.GuardBlock, DeployedAt: s.deployedAt, OnAlert: s.raiseAlert})
	return s.guard.Open(ctx)
}

// closeGuard stops the guard's counting and refresh.
func (s *Server) closeGuard() {
	if s.guard != nil {
		s.guard.Close()
	}
}

// deployedAt is when app's active version was deployed on this server
// (the zero time for an app not active): the start of its new-call-path
// learning window.
func (s *Server) deployedAt(app string) time.Time {
	if s.registry == nil {
		return time.Time{}
	}
	a, ok := s.registry.Snapshot().Apps[app]
	if !ok {
		return time.Time{}
	}
	return a.DeployedAt
}
