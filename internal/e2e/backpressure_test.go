package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/server"
)

// TestSlowlorisIsCutOffAfterReadHeaderTimeout: a client that opens a
// connection and never finishes its headers holds it no longer than the
// read-header timeout.
func TestSlowlorisIsCutOffAfterReadHeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Connections.ReadHeaderTimeout = timeout })
	defer in.close(t)
	for _, base := range []string{in.gateway, in.srv.AdminURL()} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := io.WriteString(conn, "GET /probe/echo HTTP/1.1\r\nHost: aegis\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(conn) // ends when the server closes the connection
		took := time.Since(start)
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: a connection with unfinished headers was still open after %s", base, took)
		}
		if took < timeout-50*time.Millisecond {
			t.Errorf("%s: cut off after %s, before the read-header timeout of %s", base, took, timeout)
		}
	}
}

// TestConnectionsPerAddressAreCapped: the connection over the cap is
// closed at accept, counted and logged once, while a request on a
// connection under the cap is still served.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	const perAddress = 3
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Connections.PerAddress = perAddress })
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	addr := strings.TrimPrefix(in.gateway, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range perAddress {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Connections are counted as the server accepts them; a request on the
	// first makes sure all three were.
	eventually(t, 5*time.Second, "three connections accepted", func() bool {
		return len(in.logs.Lines(`"security":true`, `"listener":"gateway"`)) == 0 && serves(t, held[0], "/public/echo")
	})
	for range 2 {
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := extra.Read(make([]byte, 1))
		extra.Close()
		var ne net.Error
		if n > 0 || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connection %d over the cap was not closed at once (read %d, %v)", perAddress+1, n, err)
		}
	}
	if !serves(t, held[1], "/public/echo") {
		t.Error("a connection under the cap was not served while others were refused")
	}
	if got := in.srv.Metrics().ConnectionsRefused("gateway"); got != 2 {
		t.Errorf("refused connections counted %v, want 2", got)
	}
	eventually(t, 2*time.Second, "the security line", func() bool {
		return len(in.logs.Lines(`"security":true`, `"listener":"gateway"`, `"remote":"127.0.0.1"`)) > 0
	})
	if lines := in.logs.Lines(`"security":true`, `"listener":"gateway"`); len(lines) != 1 {
		t.Errorf("%d security lines for two refusals from one address within the interval, want 1", len(lines))
	}
}

// serves sends a request over an open connection and reports whether it
// was answered 200.
func serves(t *testing.T, c net.Conn, path string) bool {
	t.Helper()
	return statusOn(c, path) == http.StatusOK
}

// statusOn sends a GET over an open connection and returns the answer's
// status, 0 when there is none.
func statusOn(c net.Conn, path string) int {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: aegis\r\n\r\n"); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestWriteTimeoutLeavesAFunctionItsOwnTimeout: the listeners' read and
// write timeouts bound what a client may take, not what a function may:
// a response that waits for a function gets the function's timeout on
// top, so a run longer than both timeouts is still answered.
func TestWriteTimeoutLeavesAFunctionItsOwnTimeout(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.Connections.WriteTimeout = 300 * time.Millisecond
		c.Connections.ReadTimeout = 300 * time.Millisecond
	})
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	key, err := in.admin.CreateKey(context.Background(), "deadlines")
	if err != nil {
		t.Fatal(err)
	}
	st, body, _ := call(t, in.gateway, "POST", "/probe/sleep", key.Key, map[string]int{"size": 800})
	if st != http.StatusOK || string(body) != "rested" {
		t.Fatalf("an 800ms run behind 300ms read and write timeouts: %d %s", st, body)
	}
	// The admin API's invoke runs a function too.
	res, err := in.admin.Invoke(context.Background(), "probe", "probe", []byte(`{"op":"sleep","size":800}`))
	if err != nil || string(res.Body) != "rested" {
		t.Fatalf("admin invoke of an 800ms run: %v %+v", err, res)
	}
}

// TestHeaderSizeIsCapped: headers over the cap are refused with 431.
func TestHeaderSizeIsCapped(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Connections.MaxHeaderBytes = 4 << 10 })
	defer in.close(t)
	st, _, _ := call(t, in.gateway, "GET", "/public/echo", "", nil, "X-Big", strings.Repeat("x", 16<<10))
	if st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16KiB of headers over a 4KiB cap: %d, want 431", st)
	}
}

// TestAsyncQueuesAreBoundedPerFunctionAndCaller: slow asynchronous
// invocations fill one function's bound, then one caller's; each refusal
// is a 503 with Retry-After, the usual error body, a security line and a
// count.
func TestAsyncQueuesAreBoundedPerFunctionAndCaller(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.Backpressure = server.Backpressure{Async: 10, AsyncPerFunction: 2, AsyncPerCaller: 3}
	})
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	key, err := in.admin.CreateKey(context.Background(), "flood")
	if err != nil {
		t.Fatal(err)
	}
	other, err := in.admin.CreateKey(context.Background(), "bystander")
	if err != nil {
		t.Fatal(err)
	}
	slow := map[string]any{"op": "sleep", "size": 1500}
	asyncCall(t, in.gateway, "POST", "/probe/sleep", key.Key, slow)
	asyncCall(t, in.gateway, "POST", "/probe/sleep", key.Key, slow)
	refused := func(path, k, queue string) {
		t.Helper()
		st, body, h := call(t, in.gateway, "POST", path, k, slow, "X-Aegis-Async", "true")
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
			t.Fatalf("%s over the %s bound: %d Retry-After %q %s", path, queue, st, h.Get("Retry-After"), body)
		}
		errorBody(t, body)
		if len(in.logs.Lines(`"security":true`, `"queue":"`+queue+`"`, `"request_id":"`+h.Get("X-Request-Id")+`"`)) != 1 {
			t.Errorf("no security line for the %s refusal", queue)
		}
	}
	refused("/probe/sleep", key.Key, "async_function")
	// Another function of the same caller still has room, until the
	// caller's own bound.
	asyncCall(t, in.gateway, "POST", "/hungry/sleep", key.Key, slow)
	refused("/hungry/sleep", key.Key, "async_caller")
	// Another caller is not held up by the first one's flood.
	asyncCall(t, in.gateway, "POST", "/hungry/sleep", other.Key, slow)
	m := in.srv.Metrics()
	if m.BackpressureCount("probe", "probe", "async_function") != 1 || m.BackpressureCount("probe", "hungry", "async_caller") != 1 {
		t.Error("refusals not counted in aegis_backpressure_total")
	}
}

// TestFullEventQueueFailsThePublisher: with an app's event backlog at its
// bound, a function's publish fails with "unavailable" instead of adding
// to it.
func TestFullEventQueueFailsThePublisher(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.Backpressure.AppEventBacklog = 2
		// Failed events wait long for their retry: they stay in the
		// backlog for the whole test.
		c.RetryBase, c.RetryMax = 20*time.Second, 20*time.Second
	})
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	key, err := in.admin.CreateKey(context.Background(), "publisher")
	if err != nil {
		t.Fatal(err)
	}
	var last outcome
	eventually(t, 5*time.Second, "a publish refused by the full queue", func() bool {
		last, _ = probe(t, in.gateway, key.Key, "probe", "publish", map[string]string{"topic": "jobs.fail", "value": "{}"})
		return !last.OK
	})
	if !strings.Contains(last.Error, "unavailable") {
		t.Errorf("refused publish says %q, want an unavailable error", last.Error)
	}
	if len(in.logs.Lines(`"security":true`, `"queue":"events"`, `"app":"probe"`)) == 0 {
		t.Error("no security line for the refused event")
	}
	if in.srv.Metrics().BackpressureCount("probe", "", "events") == 0 {
		t.Error("refused event not counted")
	}
}

// TestPinnedFunctionLeavesItsNeighbourAnswering: while a function's every
// instance is busy in a loop (and more requests wait for one), another
// function, even of the same app, answers at once.
func TestPinnedFunctionLeavesItsNeighbourAnswering(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	deployProbe(t, in, "testdata/pinned.yaml")
	key, err := in.admin.CreateKey(context.Background(), "pinner")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	// The function's concurrency and one more, which waits for an
	// instance (sandbox.Function.acquireSlot).
	for range 3 {
		wg.Go(func() { call(t, in.gateway, "POST", "/spin/loop", key.Key, map[string]string{}) })
	}
	defer wg.Wait()
	time.Sleep(300 * time.Millisecond) // the loops are running
	start := time.Now()
	st, body, _ := call(t, in.gateway, "POST", "/neighbour/echo", key.Key, "hello")
	if took := time.Since(start); st != http.StatusOK || string(body) != "hello" || took > time.Second {
		t.Errorf("neighbour of a pinned function: %d %q after %s", st, body, took)
	}
}

// TestConnectionCapHoldsUnderTLS: with TLS the cap sits below the
// handshake: the connection over it is closed before any, and the one
// under it completes its handshake and is served.
func TestConnectionCapHoldsUnderTLS(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.TLSSelfSigned = true
		c.Connections.PerAddress = 1
	})
	defer in.close(t)
	addr := strings.TrimPrefix(in.gateway, "https://")
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := second.Read(make([]byte, 1))
	second.Close()
	var ne net.Error
	if n > 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection over the cap under TLS: read %d, %v; want closed before any handshake", n, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(in.srv.Certificate())
	conn := tls.Client(first, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if st := statusOn(conn, "/no/such/route"); st != http.StatusNotFound {
		t.Errorf("the connection under the cap over TLS: status %d, want an answer (404)", st)
	}
}
