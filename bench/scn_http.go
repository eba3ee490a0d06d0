package main

import (
	"github.com/aegis-platform/aegis/internal/server"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Scenario 1: warm HTTP invocations of examples/echo through the whole
// gateway (route, API key check, body cap, sandbox, response) against a
// bare net/http handler doing the same JSON decode and encode. The same
// route served by a C echo (bench/testdata/c/echo.c) runs next to them: it
// runs almost no guest code, so it shows what the platform itself costs,
// apart from the Go guest. wrk drives all three over loopback with the
// same settings, alternately.
func init() {
	register(Scenario{ID: 1, Name: "warm HTTP invocation (echo) vs bare net/http", Run: runHTTP})
}

const (
	// echoMessage is what every benchmark request echoes: a short JSON
	// body, the common case of an API call.
	echoMessage = "hello from the aegis benchmark"
	// wrkThreads and wrkConns suit a 2-core machine shared by wrk and the
	// server: two wrk threads keep both cores busy without starving the
	// server, 16 connections keep the server's pool and scheduler loaded.
	wrkThreads = 2
	wrkConns   = 16
)

var echoRequestBody = `{"message":"` + echoMessage + `"}`

// echoApp builds examples/echo and returns its module and manifest text.
func echoApp(ctx context.Context, env *Env) (wasm []byte, manifest string, err error) {
	wasm, err = env.GoModule(ctx, "examples/echo")
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile("examples/echo/aegis.yaml")
	if err != nil {
		return nil, "", fmt.Errorf("read echo manifest: %w", err)
	}
	return wasm, string(b), nil
}

// startEcho starts a server with examples/echo deployed and returns it with
// a fresh API key.
func startEcho(ctx context.Context, env *Env) (*Instance, string, error) {
	wasm, manifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, "", err
	}
	return startEchoModule(ctx, env, manifest, wasm)
}

// startCEcho is startEcho with the C echo serving the same manifest.
func startCEcho(ctx context.Context, env *Env) (*Instance, string, error) {
	_, manifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, "", err
	}
	wasm, err := env.CModule(ctx, fixtureCEcho, true)
	if err != nil {
		return nil, "", err
	}
	return startEchoModule(ctx, env, manifest, wasm)
}

// startEchoModule starts a server with wasm deployed as app "echo" under
// the echo manifest and returns it with a fresh API key.
func startEchoModule(ctx context.Context, env *Env, manifest string, wasm []byte) (*Instance, string, error) {
	return startEchoModuleWith(ctx, env, manifest, wasm, nil)
}

// startEchoModuleWith is startEchoModule on a server whose configuration
// adjust changes first (nil: none).
func startEchoModuleWith(ctx context.Context, env *Env, manifest string, wasm []byte, adjust func(*server.Config)) (*Instance, string, error) {
	in, err := env.StartServerWith(ctx, "", adjust)
	if err != nil {
		return nil, "", err
	}
	if _, err := in.Deploy(ctx, "echo", manifest, wasm, "echo"); err != nil {
		in.Close()
		return nil, "", fmt.Errorf("deploy echo: %w", err)
	}
	key, err := in.Key(ctx, "bench")
	if err != nil {
		in.Close()
		return nil, "", err
	}
	return in, key, nil
}

// echoPost sends one echo request and returns how long the whole round
// trip took. Anything but 200 with the message echoed back is an error, so
// a benchmark can never time error responses by mistake.
func echoPost(ctx context.Context, hc *http.Client, url, key string) (time.Duration, error) {
	return echoPostWith(ctx, hc, url, key)
}

// echoPostWith is echoPost with extra request headers, name then value.
func echoPostWith(ctx context.Context, hc *http.Client, url, key string, header ...string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(echoRequestBody))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("POST %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	var m struct{ Message string }
	if err := json.Unmarshal(body, &m); err != nil || m.Message != echoMessage {
		return 0, fmt.Errorf("POST %s: unexpected reply %q", url, body)
	}
	return elapsed, nil
}

// newBenchClient is a keep-alive client with enough idle connections per
// host for the concurrency the scenarios use.
func newBenchClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, DisableCompression: true},
	}
}

// bareEcho is the baseline: what a hand-written Go service does for the
// same request, with nothing between the socket and the JSON.
func bareEcho(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/echo" {
		http.NotFound(w, r)
		return
	}
	var m struct {
		Message string `json:"message"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil || json.Unmarshal(body, &m) != nil || m.Message == "" {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	out, _ := json.Marshal(&m)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// startBareEcho serves bareEcho on a loopback port until ctx ends or the
// returned stop is called.
func startBareEcho() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(bareEcho), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/echo", func() { _ = srv.Close() }, nil
}

func runHTTP(ctx context.Context, env *Env) ([]*Result, error) {
	wrk, err := findWrk(ctx)
	if err != nil {
		return nil, err
	}
	goIn, goKey, err := startEcho(ctx, env)
	if err != nil {
		return nil, err
	}
	defer goIn.Close()
	cIn, cKey, err := startCEcho(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("start the C echo: %w", err)
	}
	defer cIn.Close()
	baseURL, stopBase, err := startBareEcho()
	if err != nil {
		return nil, err
	}
	defer stopBase()

	dur := 5 * time.Second
	if env.Quick {
		dur = time.Second
	}
	dir := env.TempDir()
	// The sides in the order each round drives them.
	sides := []struct {
		name, url, key string
		script         string
	}{
		{name: "baseline", url: baseURL},
		{name: "Go echo", url: goIn.Gateway + "/echo", key: goKey},
		{name: "C echo", url: cIn.Gateway + "/echo", key: cKey},
	}
	hc := newBenchClient()
	for i := range sides {
		sd := &sides[i]
		// Every side must answer correctly before anything is timed.
		if _, err := echoPost(ctx, hc, sd.url, sd.key); err != nil {
			return nil, fmt.Errorf("%s: %w", sd.name, err)
		}
		if sd.script, err = writeWrkScript(dir, fmt.Sprintf("side%d.lua", i), sd.key); err != nil {
			return nil, err
		}
		if !env.Quick {
			// A short warm-up of each: the instance pool grows to the
			// load and every heap reaches its working size before
			// anything counts.
			if _, err := runWrk(ctx, wrk, sd.script, sd.url, time.Second); err != nil {
				return nil, fmt.Errorf("%s warm-up: %w", sd.name, err)
			}
		}
	}

	var goRPS, goP99, cRPS, cP99 []Pair
	var requests, failures int
	for i := 0; i < env.Rounds; i++ {
		var runs [3]*wrkResult
		for j, sd := range sides {
			r, err := runWrk(ctx, wrk, sd.script, sd.url, dur)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", sd.name, i+1, err)
			}
			runs[j] = r
			failures += r.errors
			if j > 0 {
				requests += r.requests
			}
		}
		b, g, c := runs[0], runs[1], runs[2]
		goRPS = append(goRPS, Pair{Baseline: b.rps, Subject: g.rps})
		goP99 = append(goP99, Pair{Baseline: b.p99.Seconds() * 1e3, Subject: g.p99.Seconds() * 1e3})
		cRPS = append(cRPS, Pair{Baseline: b.rps, Subject: c.rps})
		cP99 = append(cP99, Pair{Baseline: b.p99.Seconds() * 1e3, Subject: c.p99.Seconds() * 1e3})
	}
	settings := fmt.Sprintf("wrk -t%d -c%d -d%s --latency, %d alternating rounds (bare, Go echo, C echo), loopback; wrk shares the machine's %d cores with the servers",
		wrkThreads, wrkConns, dur, env.Rounds, runtime.NumCPU())
	through := pairResult("echo throughput", "req/s", "bare net/http", goRPS, true)
	through.Target = "≥ 0.50 (moonshot 0.70)"
	through.Met = quickMet(env, through.Ratio >= 0.50)
	through.Notes = "POST /echo with an API key through the gateway and the wasm sandbox (examples/echo, Go); baseline is a net/http handler with the same JSON decode/encode and no key check. " + settings
	lat := pairResult("echo p99 latency", "ms", "bare net/http", goP99, false)
	lat.Target = "≤ 2"
	lat.Met = quickMet(env, lat.Ratio <= 2)
	lat.Notes = "99th percentile from wrk's latency distribution under the same load as the throughput figure"
	cThrough := pairResult("C echo throughput", "req/s", "bare net/http", cRPS, true)
	cThrough.Target = "≥ 0.85"
	cThrough.Met = quickMet(env, cThrough.Ratio >= 0.85)
	cThrough.Notes = "the same route, key and manifest served by bench/testdata/c/echo.c (the body back): what the platform costs with next to no guest code"
	cLat := pairResult("C echo p99 latency", "ms", "bare net/http", cP99, false)
	cLat.Target = "≤ 2"
	cLat.Met = quickMet(env, cLat.Ratio <= 2)
	if failures > 0 {
		through.Notes += fmt.Sprintf(". %d requests failed (non-2xx or socket timeouts, all sides together; Aegis served %d), which wrk's requests/sec includes", failures, requests)
	}
	return []*Result{through, lat, cThrough, cLat}, nil
}

// pairResult builds a Result from alternating samples: the medians of each
// side and their ratio. The ratio is always subject/baseline, as the issue
// states its targets; RatioNote says which direction is better.
func pairResult(name, unit, baseName string, samples []Pair, higherIsBetter bool) *Result {
	var bs, ss []float64
	for _, p := range samples {
		bs, ss = append(bs, p.Baseline), append(ss, p.Subject)
	}
	r := &Result{Name: name, Unit: unit, BaseName: baseName, Baseline: Median(bs), Subject: Median(ss), Samples: samples}
	if r.Baseline != 0 {
		r.Ratio = r.Subject / r.Baseline
	}
	if higherIsBetter {
		r.RatioNote = "subject/baseline, higher is better"
	} else {
		r.RatioNote = "subject/baseline, lower is better"
	}
	return r
}

// quickMet is Met(ok), except in quick mode, whose numbers say nothing
// about speed: there the verdict is left out.
func quickMet(env *Env, ok bool) *bool {
	if env.Quick {
		return nil
	}
	return Met(ok)
}

// findWrk returns the path of wrk, installing the Debian package when it
// is missing and the harness runs as root (as in CI).
func findWrk(ctx context.Context) (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("wrk is not installed: run `apt-get install -y wrk` (Debian/Ubuntu) or put wrk on PATH")
	}
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "wrk")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install wrk: %w\n%s", err, out)
	}
	return exec.LookPath("wrk")
}

// writeWrkScript writes the Lua script that makes wrk send the echo
// request, with the API key when there is one.
func writeWrkScript(dir, name, key string) (string, error) {
	var sb strings.Builder
	sb.WriteString("wrk.method = \"POST\"\n")
	fmt.Fprintf(&sb, "wrk.body = %s\n", luaString(echoRequestBody))
	sb.WriteString("wrk.headers[\"Content-Type\"] = \"application/json\"\n")
	if key != "" {
		fmt.Fprintf(&sb, "wrk.headers[\"Authorization\"] = %s\n", luaString("Bearer "+key))
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(sb.String()), 0o600)
}

// luaString quotes s as a Lua string literal (decimal escapes for
// everything but plain printable ASCII).
func luaString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\%d", c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// wrkResult is what a wrk run reports that the scenario uses.
type wrkResult struct {
	rps              float64
	p99              time.Duration
	requests, errors int // errors: non-2xx responses and socket errors
}

func runWrk(ctx context.Context, wrk, script, url string, dur time.Duration) (*wrkResult, error) {
	cmd := exec.CommandContext(ctx, wrk,
		"-t"+strconv.Itoa(wrkThreads), "-c"+strconv.Itoa(wrkConns), "-d"+wrkDuration(dur),
		"--latency", "-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return parseWrk(out)
}

// wrkDuration formats d for wrk, which takes whole seconds (or a unit
// suffix of its own, not Go's).
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkRequests = regexp.MustCompile(`(?m)^\s+(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`(?m)Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErrs = regexp.MustCompile(`(?m)Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// maxWrkErrors is the share of failed requests a run may have and still
// count. A loaded, shared machine can push a few requests past the
// function's timeout; those are reported, not hidden. More than this means
// the run measured failures, and it is refused.
const maxWrkErrors = 0.01

// parseWrk reads requests/sec, the 99th percentile and the failures from
// wrk's output.
func parseWrk(out []byte) (*wrkResult, error) {
	mr := wrkRPS.FindSubmatch(out)
	mp := wrkP99.FindSubmatch(out)
	mn := wrkRequests.FindSubmatch(out)
	if mr == nil || mp == nil || mn == nil {
		return nil, fmt.Errorf("wrk: cannot read requests, requests/sec and 99%% latency from:\n%s", out)
	}
	r := &wrkResult{}
	r.rps, _ = strconv.ParseFloat(string(mr[1]), 64)
	r.requests, _ = strconv.Atoi(string(mn[1]))
	v, _ := strconv.ParseFloat(string(mp[1]), 64)
	unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[string(mp[2])]
	r.p99 = time.Duration(v * unit)
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		r.errors += n
	}
	if m := wrkSockErrs.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(string(g))
			r.errors += n
		}
	}
	if r.rps <= 0 || r.requests <= 0 {
		return nil, fmt.Errorf("wrk: no requests completed:\n%s", out)
	}
	if float64(r.errors) > maxWrkErrors*float64(r.requests) {
		return nil, fmt.Errorf("wrk: %d failed of %d requests:\n%s", r.errors, r.requests, out)
	}
	return r, nil
}
