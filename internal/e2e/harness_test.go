// Package e2e runs Aegis end to end: a real server on loopback ports with a
// real embedded NATS JetStream and real wasm modules built during the run.
// One server is shared by the tests that can share it; tests that restart a
// server start their own.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/netguard"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
	"github.com/aegis-platform/aegis/internal/vault"
)

// logBuffer holds a test server's log lines.
type logBuffer = logbuf.Buffer

// egressGuard is the only dialer the test servers' fetch may use. It lets
// through loopback addresses a test explicitly allowed and records anything
// else instead of connecting, so a broken egress filter cannot send a packet
// off this machine.
type egressGuard struct {
	mu      sync.Mutex
	allowed map[string]bool
	// redirects hands a connection for a public address (what the fake
	// resolver gives a test host) to a loopback server instead: the
	// public address itself is never dialed.
	redirects  map[string]string
	violations []string
}

func (g *egressGuard) redirect(public, loopback string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.redirects == nil {
		g.redirects = map[string]string{}
	}
	g.redirects[public] = loopback
}

func (g *egressGuard) allow(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.allowed[addr] = true
}

func (g *egressGuard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	if to, ok := g.redirects[addr]; ok {
		addr = to
		g.allowed[addr] = true
	}
	// Allowed or not, nothing but loopback is dialed.
	ok := g.allowed[addr] && netguard.Loopback(addr)
	if !ok {
		g.violations = append(g.violations, addr)
	}
	g.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("test egress guard: dial to %s refused", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (g *egressGuard) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.violations) > 0 {
		t.Errorf("fetch tried to dial addresses it must never reach: %v", g.violations)
	}
}

// fakeResolver answers for the test domain only; nothing reaches real DNS.
type fakeResolver map[string][]string

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

var testResolver = fakeResolver{
	"local.example.test":   {"127.0.0.1"},
	"private.example.test": {"10.0.0.1"},
	// A public address, so the egress filter lets it through; the guard
	// hands its connections to the diary's stand-in webhook receiver.
	diaryHookHost:       {diaryHookPublicIP},
	"meta.example.test": {"169.254.169.254"},
}

// instance is one running server and what tests need to talk to it.
type instance struct {
	srv     *server.Server
	admin   *client.Client
	gateway string
	dataDir string
	logs    *logBuffer
	egress  *egressGuard
}

func startServer(t testing.TB, dataDir string) *instance {
	t.Helper()
	return startServerWith(t, dataDir, nil)
}

// startServerWith is startServer with the configuration changed by adjust
// (when not nil) before the server starts. With TLS the admin client trusts
// the server's certificate.
func startServerWith(t testing.TB, dataDir string, adjust func(*server.Config)) *instance {
	t.Helper()
	in := newServer(t, dataDir, adjust)
	if err := in.start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	return in
}

// newServer builds a server as startServerWith does, without starting it.
func newServer(t testing.TB, dataDir string, adjust func(*server.Config)) *instance {
	t.Helper()
	logs := logbuf.New()
	// When a test fails, its server's warnings and errors are the first
	// thing to read; print them rather than lose them with the process.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, l := range logs.Lines() {
			if lvl, _ := l["level"].(string); lvl == "WARN" || lvl == "ERROR" {
				b, _ := json.Marshal(l)
				t.Logf("server log: %s", b)
			}
		}
	})
	guard := &egressGuard{allowed: map[string]bool{}}
	hook := diaryHook(t)
	guard.redirect(diaryHookPublicIP+":443", hook.addr)
	cfg := server.Config{
		DataDir: dataDir, CacheDir: compileCache, HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		// A NATS port lets a test write into the streams as an outsider
		// would (envelope_test.go).
		NATSListen: "127.0.0.1:0",
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryBase:  50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		EgressDial: guard.dial, EgressResolver: testResolver, EgressRootCAs: hook.roots,
		DrainTimeout: 5 * time.Second,
		// Never the user's own config directory: one master key for every
		// server of this test process, so servers sharing a NATS agree.
		MasterKey: vault.MasterKeyOptions{ConfigDir: testConfigDir(t)},
		// Every test connects from 127.0.0.1 and many fail authentication
		// or probe paths on purpose: the guard's rules run with thresholds
		// no test reaches, but for guard_test.go's own servers.
		Guard: server.Guard{Rules: unreachableGuardRules()},
	}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	return &instance{srv: srv, dataDir: dataDir, logs: logs, egress: guard}
}

// start starts a server newServer built, and its admin client. It may
// run on any goroutine (several servers of a cluster start at once).
func (in *instance) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := in.srv.Start(ctx); err != nil {
		return err
	}
	var opts []client.Option
	if cert := in.srv.Certificate(); cert != nil {
		opts = append(opts, client.WithHTTPClient(trustingClient(cert)))
	}
	in.admin = client.New(in.srv.AdminURL(), in.srv.AdminToken(), opts...)
	in.gateway = in.srv.GatewayURL()
	return nil
}

// shareNATS makes c a server that uses first's NATS instead of an embedded
// one of its own, as a second server of one installation does (with the
// credentials that NATS needs).
func shareNATS(c *server.Config, first *instance) {
	c.NATSURL, c.NATSListen = first.srv.NATSURL(), ""
	c.NATSNkey = natsKeyOf(first)
	// Servers on one NATS sign events with one key: without a cluster
	// join file, the first's file copied (a server with another refuses
	// to start, TestSharedNATS).
	// The audit key too: one chain, one key.
	for _, name := range []string{"events.key", "audit.key"} {
		key, err := os.ReadFile(filepath.Join(first.dataDir, "keys", name))
		if err == nil {
			dir := filepath.Join(c.DataDir, "keys")
			if err = os.MkdirAll(dir, 0o700); err == nil {
				err = os.WriteFile(filepath.Join(dir, name), key, 0o600)
			}
		}
		if err != nil {
			panic("share " + name + ": " + err.Error())
		}
	}
}

// natsKeyOf is the client key file a server opening --nats-listen without a
// cluster join file writes: the one credential its NATS port accepts.
func natsKeyOf(in *instance) string { return filepath.Join(in.dataDir, "keys", "nats.nk") }

// unreachableGuardRules are the default rules with thresholds no test
// reaches.
func unreachableGuardRules() []guard.Rule {
	rules := guard.DefaultRules()
	for i := range rules {
		rules[i].Threshold = guard.MaxThreshold
	}
	return rules
}

func (in *instance) close(t testing.TB) {
	t.Helper()
	if err := in.srv.Close(context.Background()); err != nil {
		t.Errorf("close server: %v", err)
	}
}

var (
	sharedOnce sync.Once
	shared     *instance
	sharedKey  string
	sharedErr  error
	sharedDir  string
)

// sharedServer starts (once) the server most tests use, with the probe app
// deployed and an API key created.
func sharedServer(t *testing.T) (*instance, string) {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aegis-e2e-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedDir = dir
		shared = startServer(t, dir)
		deployProbe(t, shared, "testdata/probe.yaml")
		k, err := shared.admin.CreateKey(context.Background(), "e2e")
		if err != nil {
			sharedErr = err
			return
		}
		sharedKey = k.Key
	})
	if sharedErr != nil || shared == nil {
		t.Fatalf("shared server: %v", sharedErr)
	}
	return shared, sharedKey
}

// compileCache is the compiled-module cache every test server shares:
// compiling the probe under the race detector takes seconds, and each
// server would otherwise pay it again in its own data directory.
var compileCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aegis-e2e-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	compileCache = dir
	code := m.Run()
	if shared != nil {
		if len(shared.egress.violations) > 0 {
			fmt.Fprintf(os.Stderr, "egress guard: fetch dialed %v\n", shared.egress.violations)
			code = 1
		}
		_ = shared.srv.Close(context.Background())
		_ = os.RemoveAll(sharedDir)
	}
	_ = os.RemoveAll(compileCache)
	if configDir != "" {
		_ = os.RemoveAll(configDir)
	}
	os.Exit(code)
}

// probeModule is the probe fixture built once per run.
func probeModule(t testing.TB) []byte {
	return wasmbuild.GoModule(t, "testdata/probe")
}

// deployProbe deploys a manifest whose every function runs the probe module.
func deployProbe(t testing.TB, in *instance, manifestPath string) *client.DeployResult {
	t.Helper()
	res, err := deployWith(in, manifestPath, probeModule(t))
	if err != nil {
		t.Fatalf("deploy %s: %v", manifestPath, err)
	}
	return res
}

func deployWith(in *instance, manifestPath string, wasm []byte) (*client.DeployResult, error) {
	text, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	sum := sha256.Sum256(wasm)
	hexsum := hex.EncodeToString(sum[:])
	if err := in.admin.UploadModule(ctx, hexsum, wasm); err != nil {
		return nil, err
	}
	app, fns := appAndFunctions(string(text))
	modules := map[string]string{}
	for _, fn := range fns {
		modules[fn] = hexsum
	}
	return in.admin.Deploy(ctx, app, client.DeployRequest{Manifest: string(text), File: filepath.Base(manifestPath), Modules: modules})
}

// appAndFunctions reads the app name and function names of a test manifest
// (top-level "app:" and the two-space-indented keys under "functions:").
func appAndFunctions(text string) (string, []string) {
	var app string
	var fns []string
	inFunctions := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "app:"):
			app = strings.TrimSpace(strings.TrimPrefix(line, "app:"))
		case strings.HasPrefix(line, "functions:"):
			inFunctions = true
		case inFunctions && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(strings.TrimSpace(line), ":"):
			fns = append(fns, strings.TrimSuffix(strings.TrimSpace(line), ":"))
		}
	}
	return app, fns
}

// call sends a request to the gateway.
func call(t testing.TB, gw, method, path, key string, body any, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
		ctype = "application/octet-stream"
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, gw+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

// outcome mirrors the probe's report of a host call.
type outcome struct {
	OK     bool   `json:"ok"`
	Value  string `json:"value"`
	Error  string `json:"error"`
	Denied bool   `json:"denied"`
	Status int    `json:"status"`
}

func probe(t testing.TB, gw, key, fn, op string, in any) (outcome, string) {
	t.Helper()
	status, body, hdr := call(t, gw, "POST", "/"+fn+"/"+op, key, in)
	if status != 200 {
		t.Fatalf("probe %s/%s: status %d body %s", fn, op, status, body)
	}
	var o outcome
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("probe %s/%s: %v: %s", fn, op, err, body)
	}
	return o, hdr.Get("X-Request-Id")
}

// errorBody checks the sanitized error shape and returns the message.
func errorBody(t testing.TB, body []byte) (string, string) {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", body)
	}
	if len(e) != 2 {
		t.Errorf("error body has fields beyond error and request_id: %s", body)
	}
	msg, _ := e["error"].(string)
	id, _ := e["request_id"].(string)
	if msg == "" || id == "" {
		t.Errorf("error body lacks error or request_id: %s", body)
	}
	for _, leak := range []string{".go", "goroutine", "wasm", "/root", "panic", "nats", "jetstream", "wazero", "wazy"} {
		if strings.Contains(strings.ToLower(msg), leak) {
			t.Errorf("error message leaks %q: %s", leak, msg)
		}
	}
	return msg, id
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", within, what)
}
