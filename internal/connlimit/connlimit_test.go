package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
)

// accepted runs Accept in the background and hands over what it returns.
func serveAccept(t *testing.T, l *Listener) <-chan net.Conn {
	t.Helper()
	out := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(out)
				return
			}
			out <- c
		}
	}()
	return out
}

func TestListenerCapsConnectionsPerAddress(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := logbuf.New()
	var refused atomic.Int32
	l := New(raw, Config{PerAddress: 2, Name: "gateway", Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		OnRefuse: func(name string) {
			if name == "gateway" {
				refused.Add(1)
			}
		}})
	defer l.Close()
	accepted := serveAccept(t, l)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var server []net.Conn
	for range 2 {
		dial()
		server = append(server, <-accepted)
	}
	// The third and fourth are closed at accept: the client reads EOF.
	for range 2 {
		c := dial()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connection over the cap not closed: %v", err)
		}
	}
	if got := refused.Load(); got != 2 {
		t.Errorf("OnRefuse called %d times, want 2", got)
	}
	if lines := logs.Lines(`"security":true`, `"remote":"127.0.0.1"`, `"refused":1`); len(lines) != 1 {
		t.Errorf("want one security line for two refusals within the interval, got %d:\n%s", len(lines), logs)
	}
	// Closing one (twice: the second must not free another slot) lets
	// exactly one more in.
	server[0].Close()
	server[0].Close()
	if got := l.Open("127.0.0.1"); got != 1 {
		t.Fatalf("open after one close: %d, want 1", got)
	}
	dial()
	select {
	case c := <-accepted:
		server = append(server, c)
	case <-time.After(5 * time.Second):
		t.Fatal("a connection under the cap was not accepted")
	}
	for _, c := range server[1:] {
		c.Close()
	}
	if got := l.Open("127.0.0.1"); got != 0 {
		t.Errorf("open after every close: %d, want 0 (the table keeps open addresses only)", got)
	}
}

func TestRefusalsAreLoggedOncePerInterval(t *testing.T) {
	logs := logbuf.New()
	l := New(nil, Config{PerAddress: 1, Name: "admin", Logger: slog.New(slog.NewJSONHandler(logs, nil)), LogInterval: time.Hour})
	for range 5 {
		l.refused("192.0.2.1")
	}
	l.refused("192.0.2.2")
	if n := len(logs.Lines(`"remote":"192.0.2.1"`)); n != 1 {
		t.Errorf("%d lines for one address within the interval, want 1", n)
	}
	// Past the interval the next line carries the refusals not logged.
	l.mu.Lock()
	e := l.logged["192.0.2.1"]
	e.at = time.Now().Add(-2 * time.Hour)
	l.logged["192.0.2.1"] = e
	l.mu.Unlock()
	l.refused("192.0.2.1")
	if n := len(logs.Lines(`"remote":"192.0.2.1"`, `"refused":5`)); n != 1 {
		t.Errorf("the line after the interval does not count the 4 unlogged refusals and itself:\n%s", logs)
	}
}

func TestLoggedTableIsBounded(t *testing.T) {
	l := New(nil, Config{PerAddress: 1, LogInterval: time.Hour})
	for i := range maxLogged + 10 {
		l.refused(net.IPv4(198, 18+byte(i>>16), byte(i>>8), byte(i)).String())
	}
	if n := len(l.logged); n > maxLogged {
		t.Errorf("logged table holds %d addresses, bound %d", n, maxLogged)
	}
}
