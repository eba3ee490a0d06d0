package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aegis-platform/aegis/internal/admin"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/console"
	"github.com/aegis-platform/aegis/internal/jetstream"
)

// consoleBucket keeps the console's sessions: shared by every server of a
// cluster, and expired by JetStream at the end of a session's lifetime
// whatever the console does.
const consoleBucket = "aegis_console_sessions"

// openConsole builds the web console over api (docs/console.md).
func (s *Server) openConsole(ctx context.Context, api *admin.API, tokens *auth.AdminTokens) error {
	bucket, err := s.node.Bucket(ctx, consoleBucket, jetstream.BucketOptions{History: 1, TTL: console.DefaultLifetime,
		Description: "console sessions (hashed ids; no tokens)"})
	if err != nil {
		return fmt.Errorf("open console sessions: %w", err)
	}
	c, err := console.New(console.Config{Admin: api, Sessions: bucket, BootstrapToken: s.token, AdminTokens: tokens,
		Guard: s.guard, TLS: s.tls != nil, Logger: s.log, OnAuthFailure: s.metrics.AuthFailure})
	if err != nil {
		return err
	}
	s.console = c
	return nil
}

// adminListener serves the console under /console/ and the admin API
// everywhere else, each with its own fixed headers: the API's policy
// allows nothing at all, the console's its own script, style and images.
func adminListener(api http.Handler, c *console.Console, tlsOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", withHeaders(api, adminHeaders(tlsOn)))
	if c != nil {
		mux.Handle("/console/", withHeaders(c, console.Headers(tlsOn)))
		mux.Handle("GET /console", withHeaders(http.RedirectHandler("/console/", http.StatusMovedPermanently), console.Headers(tlsOn)))
	}
	return mux
}
