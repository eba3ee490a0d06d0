package jetstream

import (
	"context"
	"fmt"
	"log/slog"
)

// serverLog routes the embedded server's log lines to slog. Its notices
// (start-up banner, listening addresses, stream recovery) are routine for a
// component the operator did not configure directly, so they go to Debug;
// warnings and errors keep their level.
type serverLog struct{ l *slog.Logger }

func (s serverLog) logf(level slog.Level, format string, v []any) {
	if !s.l.Enabled(context.Background(), level) {
		return
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

func (s serverLog) Noticef(format string, v ...any) { s.logf(slog.LevelDebug, format, v) }
func (s serverLog) Warnf(format string, v ...any)   { s.logf(slog.LevelWarn, format, v) }
func (s serverLog) Errorf(format string, v ...any)  { s.logf(slog.LevelError, format, v) }
func (s serverLog) Debugf(format string, v ...any)  { s.logf(slog.LevelDebug, format, v) }
func (s serverLog) Tracef(format string, v ...any)  { s.logf(slog.LevelDebug-4, format, v) }

// Fatalf is logged as an error: the server calls it for conditions it then
// handles by shutting down, and the platform must not exit from inside a
// library.
func (s serverLog) Fatalf(format string, v ...any) { s.logf(slog.LevelError, format, v) }
