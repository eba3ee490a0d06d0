package server

import (
	"context"
	"time"

	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// spansFlushTimeout bounds how long Close waits for the last spans to
// reach the collector.
const spansFlushTimeout = 5 * time.Second

// startSpans starts the OTLP exporter when Config.OTLP names an endpoint,
// and logs where spans go (never the headers: they may hold a token).
func (s *Server) startSpans(ctx context.Context) error {
	c := s.cfg.OTLP
	if c.Endpoint == "" {
		return nil
	}
	if c.Logger == nil {
		c.Logger = s.log
	}
	e, err := otlp.New(ctx, c)
	if err != nil {
		return err
	}
	s.spans = e
	s.log.Info("exporting spans over OTLP", logkey.URL, c.RedactedEndpoint())
	return nil
}

// Spans is where the server's parts hand their finished spans: the OTLP
// exporter, or nil (a nil interface, not a nil pointer in one) when
// export is off, so a part tests it with == nil and does nothing.
func (s *Server) Spans() telemetry.SpanSink {
	if s.spans == nil {
		return nil
	}
	return s.spans
}

// closeSpans flushes and stops the exporter.
func (s *Server) closeSpans() {
	if s.spans == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spansFlushTimeout)
	defer cancel()
	if err := s.spans.Shutdown(ctx); err != nil {
		s.log.Warn("spans not all exported at shutdown", logkey.Error, err)
	}
}
