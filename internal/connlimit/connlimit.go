// Package connlimit owns what one client may hold of a listener: how many
// connections at once from one address (Listener), and how long a response
// that waits for a function may take (ExtendForRun). It wraps the raw TCP
// listener, below TLS, so a refused connection costs an accept and a close
// and never a handshake.
//
// The counts are per server: each server of a cluster caps the
// connections made to it. A refusal is logged as a security line at most
// once per address per LogInterval, with the number refused since, so a
// flood of connections cannot become a flood of log lines.
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Config sets a Listener's bound.
type Config struct {
	// PerAddress is how many connections one client address may hold open
	// at once; the next is closed as soon as it is accepted. Zero or less
	// means DefaultPerAddress.
	PerAddress int
	// Name names the listener in log lines and counters ("gateway",
	// "admin").
	Name string
	// Logger receives the security lines; nil logs nothing.
	Logger *slog.Logger
	// LogInterval is the least time between two lines about one address
	// (default DefaultLogInterval).
	LogInterval time.Duration
	// OnRefuse is called for every refused connection (a counter); nil
	// calls nothing.
	OnRefuse func(listener string)
}

// Defaults.
const (
	// DefaultPerAddress lets a browser's six connections, a few tabs and
	// a NAT of a handful of machines through, and stops one address from
	// holding thousands of idle sockets.
	DefaultPerAddress  = 64
	DefaultLogInterval = time.Minute
	// maxLogged bounds the table of addresses last logged: past it,
	// entries older than LogInterval are dropped, and if none is, the
	// table is cleared (a line too many beats memory without bound).
	maxLogged = 4096
)

// Listener caps the connections each remote address holds open at once.
type Listener struct {
	net.Listener
	cfg Config

	mu     sync.Mutex
	open   map[string]int    // by address, only while > 0
	logged map[string]logged // by address: when last logged, refused since
}

type logged struct {
	at      time.Time
	refused int
}

// New wraps ln.
func New(ln net.Listener, cfg Config) *Listener {
	if cfg.PerAddress <= 0 {
		cfg.PerAddress = DefaultPerAddress
	}
	if cfg.LogInterval <= 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, cfg: cfg, open: map[string]int{}, logged: map[string]logged{}}
}

// Accept returns the next connection whose address is under its cap;
// those over it are closed here and never reach the server.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		if l.take(addr) {
			return &conn{Conn: c, l: l, addr: addr}, nil
		}
		// Counted and logged before the close, so that whoever sees the
		// connection end also finds it counted.
		l.refused(addr)
		_ = c.Close()
	}
}

func (l *Listener) take(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] >= l.cfg.PerAddress {
		return false
	}
	l.open[addr]++
	return true
}

func (l *Listener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] <= 1 {
		delete(l.open, addr) // the table holds open addresses only
		return
	}
	l.open[addr]--
}

// Open is how many connections addr (an IP address) holds, for tests.
func (l *Listener) Open(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[addr]
}

// refused counts a refusal and logs it unless addr was logged within
// LogInterval; the next line carries the count of those not logged.
func (l *Listener) refused(addr string) {
	if l.cfg.OnRefuse != nil {
		l.cfg.OnRefuse(l.cfg.Name)
	}
	now := time.Now()
	l.mu.Lock()
	e := l.logged[addr]
	e.refused++
	if !e.at.IsZero() && now.Sub(e.at) < l.cfg.LogInterval {
		l.logged[addr] = e
		l.mu.Unlock()
		return
	}
	n := e.refused
	if len(l.logged) >= maxLogged {
		l.prune(now)
	}
	l.logged[addr] = logged{at: now}
	l.mu.Unlock()
	l.cfg.Logger.Warn("connection refused: too many from one address", logkey.Security, true,
		logkey.Listener, l.cfg.Name, logkey.Remote, addr, logkey.Reason, "connections per address",
		logkey.Bound, l.cfg.PerAddress, logkey.Refused, n)
}

// prune drops the addresses not logged within LogInterval; l.mu is held.
func (l *Listener) prune(now time.Time) {
	for a, e := range l.logged {
		if now.Sub(e.at) >= l.cfg.LogInterval {
			delete(l.logged, a)
		}
	}
	if len(l.logged) >= maxLogged {
		clear(l.logged)
	}
}

// hostOf is the address a cap applies to: the IP without the port (a
// client opens each connection from a new port).
func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// conn gives its address's slot back once, however often it is closed.
type conn struct {
	net.Conn
	l    *Listener
	addr string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// Unwrap returns the connection the listener accepted, for code that
// needs its concrete type.
func (c *conn) Unwrap() net.Conn { return c.Conn }
