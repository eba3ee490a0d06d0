package audit

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Security turns the server's security log lines (logkey.Security true:
// refused admin calls, authentication failures, denials at the gateway)
// into audit records without one record per line: it counts lines per
// group (message, reason, app, function, token, address, method, path) and
// appends one "security" record per group per window with the count. A
// flood of failures costs a counter, never an append per request; lines
// arrive through a bounded queue and are dropped (and the drops counted in
// the next window's records) when it is full.
type Security struct {
	window time.Duration
	queue  chan group
	log    atomic.Pointer[Log]
	logger atomic.Pointer[slog.Logger]

	dropped    atomic.Int64
	stop       chan struct{}
	done       chan struct{}
	attachOnce sync.Once
	closeOnce  sync.Once
	started    atomic.Bool
}

// group is what one security record counts.
type group struct {
	msg, reason, app, function, actor, address, method, path string
}

// Bounds of one window.
const (
	securityQueue  = 1024
	maxGroups      = 256 // beyond: counted under one "other" group
	overflowAction = "security events (other)"
)

// NewSecurity returns a counter whose Handler can wrap the server's
// logger before anything else exists; it starts writing records once
// Attach gives it the log, and lines logged before wait in its queue.
// window <= 0 is one minute.
func NewSecurity(window time.Duration) *Security {
	if window <= 0 {
		window = time.Minute
	}
	return &Security{window: window, queue: make(chan group, securityQueue), stop: make(chan struct{}), done: make(chan struct{})}
}

// Attach starts writing records to l; logger gets the failures to write
// (give it one that does not count them, the handler's next, so a failing
// log does not feed itself).
func (s *Security) Attach(l *Log, logger *slog.Logger) {
	s.attachOnce.Do(func() {
		s.logger.Store(logger)
		s.log.Store(l)
		s.started.Store(true)
		go s.run()
	})
}

// note counts one line; it never blocks.
func (s *Security) note(g group) {
	select {
	case s.queue <- g:
	default:
		s.dropped.Add(1)
	}
}

func (s *Security) run() {
	defer close(s.done)
	counts := map[group]int{}
	start := time.Now()
	t := time.NewTicker(s.window)
	defer t.Stop()
	for {
		select {
		case g := <-s.queue:
			if _, ok := counts[g]; !ok && len(counts) >= maxGroups {
				g = group{msg: overflowAction}
			}
			counts[g]++
		case <-t.C:
			counts, start = s.flush(counts, start), time.Now()
		case <-s.stop:
			for {
				select {
				case g := <-s.queue:
					counts[g]++
				default:
					s.flush(counts, start)
					return
				}
			}
		}
	}
}

// flush appends one record per group and returns the map to count the
// next window in; without a log yet the counts carry over.
func (s *Security) flush(counts map[group]int, start time.Time) map[group]int {
	l := s.log.Load()
	dropped := s.dropped.Load()
	if l == nil || len(counts) == 0 && dropped == 0 {
		return counts
	}
	s.dropped.Add(-dropped)
	if dropped > 0 {
		counts[group{msg: overflowAction, reason: "queue full"}] += int(dropped)
	}
	end := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for g, n := range counts {
		target := g.app
		if g.function != "" {
			target += "/" + g.function
		}
		detail := map[string]string{"count": strconv.Itoa(n), "from": start.UTC().Format(time.RFC3339), "to": end.UTC().Format(time.RFC3339)}
		for k, v := range map[string]string{"reason": g.reason, "method": g.method, "path": g.path} {
			if v != "" {
				detail[k] = v
			}
		}
		_, err := l.Append(ctx, Record{Kind: KindSecurity, Action: g.msg, Actor: g.actor, Address: g.address, Target: target, Detail: detail})
		if err != nil {
			if lg := s.logger.Load(); lg != nil {
				lg.Error("audit security record not written", logkey.Error, err, logkey.Count, n)
			}
		}
	}
	return map[group]int{}
}

// Close writes what was counted and stops. Call it before the log's
// stream closes. Safe to call twice.
func (s *Security) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		if s.started.Load() {
			<-s.done
		}
	})
}

// Handler returns a slog.Handler that passes every line to next and
// counts those with logkey.Security true.
func (s *Security) Handler(next slog.Handler) slog.Handler {
	return &teeHandler{next: next, s: s}
}

type teeHandler struct {
	next    slog.Handler
	s       *Security
	attrs   []slog.Attr // from WithAttrs, outside any group
	grouped bool
}

func (h *teeHandler) Enabled(ctx context.Context, level slog.Level) bool {
	// Security lines are Info or Warn: see them even when next filters.
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		h.count(r)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *teeHandler) count(r slog.Record) {
	g := group{msg: r.Message}
	security := false
	take := func(a slog.Attr) bool {
		switch a.Key {
		case logkey.Security:
			security = a.Value.Kind() == slog.KindBool && a.Value.Bool()
		case logkey.Reason:
			g.reason = a.Value.String()
		case logkey.App:
			g.app = a.Value.String()
		case logkey.Function:
			g.function = a.Value.String()
		case logkey.TokenName:
			g.actor = a.Value.String()
		case logkey.Remote:
			g.address = hostOf(a.Value.String())
		case logkey.Method:
			g.method = a.Value.String()
		case logkey.Path:
			g.path = a.Value.String()
		}
		return true
	}
	if h.grouped {
		return // the line's own keys are under a group: not the platform's shape
	}
	for _, a := range h.attrs {
		take(a)
	}
	r.Attrs(take)
	if security {
		h.s.note(g)
	}
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.grouped {
		c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	}
	return &c
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

// hostOf is an address without its port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// HostOf is the address audit records name for a caller at addr
// (an http.Request's RemoteAddr): its IP, without the port.
func HostOf(addr string) string { return hostOf(addr) }
