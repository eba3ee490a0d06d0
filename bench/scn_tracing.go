package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/otlp"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/cputime"
)

// Scenario 12: what exporting traces costs on the echo round trip. Two
// servers run in this process with the same echo app: one as shipped
// (every invocation already a span in the function log, the call graph,
// metrics and the audit log on, as always), one that also exports its
// spans over OTLP/HTTP to a stand-in collector on loopback (the gateway's
// span and the invocation's, each request carrying a caller's
// traceparent). They are timed alternately, one request after the other;
// the CPU the whole process spends per request is measured over the same
// loops, since the exporter's batching and sending happen off the
// request's path, where a latency cannot see them. What is always on is
// measured by Go benchmarks (docs/performance.md): it cannot be switched
// off to compare against.
func init() {
	register(Scenario{ID: 12, Name: "tracing: echo with spans exported over OTLP vs as shipped", Run: runTracing})
}

const traceparentHeader = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func runTracing(ctx context.Context, env *Env) ([]*Result, error) {
	calls := 1500
	if env.Quick {
		calls = 40
	}
	wasm, manifestText, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	collector, spansSeen, err := startCollector()
	if err != nil {
		return nil, err
	}
	defer collector.Close()
	plain, err := env.StartServer(ctx, "")
	if err != nil {
		return nil, err
	}
	defer plain.Close()
	exporting, err := env.StartServerWith(ctx, "", func(c *server.Config) {
		c.OTLP = otlp.Config{Endpoint: "http://" + collector.Addr().String() + "/v1/traces"}
	})
	if err != nil {
		return nil, err
	}
	defer exporting.Close()
	keys := make([]string, 2)
	for i, in := range []*Instance{plain, exporting} {
		if _, err := in.Deploy(ctx, "echo", manifestText, wasm, "echo"); err != nil {
			return nil, fmt.Errorf("deploy echo: %w", err)
		}
		if keys[i], err = in.Key(ctx, "bench"); err != nil {
			return nil, err
		}
	}
	hc := newBenchClient()
	base := func() error { _, err := echoPost(ctx, hc, plain.Gateway+"/echo", keys[0]); return err }
	traced := func() error {
		_, err := echoPostWith(ctx, hc, exporting.Gateway+"/echo", keys[1], "Traceparent", traceparentHeader)
		return err
	}
	for range 20 {
		if err := base(); err != nil {
			return nil, err
		}
		if err := traced(); err != nil {
			return nil, err
		}
	}
	var cpuPairs []Pair
	cpuOf := func(op func() error, into *float64) func() (float64, error) {
		return func() (float64, error) {
			c0 := cputime.Process()
			p50, err := p50Micros(calls, 0, op)
			*into = float64(cputime.Process()-c0) / float64(calls) / 1e3
			return p50, err
		}
	}
	var cb, cs float64
	b, s, samples, err := Alternate(env.Rounds,
		func() (float64, error) {
			v, err := cpuOf(base, &cb)()
			return v, err
		},
		func() (float64, error) {
			v, err := cpuOf(traced, &cs)()
			cpuPairs = append(cpuPairs, Pair{Baseline: cb, Subject: cs})
			return v, err
		})
	if err != nil {
		return nil, err
	}
	// The exporter sends a batch every few seconds; a short run may end
	// before the first.
	for deadline := time.Now().Add(10 * time.Second); spansSeen.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if spansSeen.Load() == 0 {
		return nil, fmt.Errorf("the collector received no spans: export is not on")
	}
	lat := atMost(ratioResult("echo median latency, spans exported", "µs", "as shipped, no export", b, s, samples), 1.03, "with / without")
	lat.Notes = fmt.Sprintf("median of %d sequential requests per round; the collector received %d export requests", calls, spansSeen.Load())

	cpu := atMost(pairsResult("process CPU per echo request, spans exported", "µs", "as shipped, no export", cpuPairs), 1.03, "with / without")
	cpu.Notes = "CPU of the whole process (client, both servers, embedded NATS, exporter) over each round's loop, divided by its requests"
	return []*Result{lat, cpu}, nil
}

// startCollector is a stand-in OTLP/HTTP collector on loopback: it reads
// every export request and answers with an empty (valid) response,
// counting the requests.
func startCollector() (net.Listener, *atomic.Int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	var n atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/traces") {
			n.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	return ln, &n, nil
}
