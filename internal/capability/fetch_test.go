package capability

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/testkit/netguard"
	"github.com/aegis-platform/aegis/manifest"
)

// No test in this file may send a packet off the machine. Every Host gets a
// fake resolver, and a dialer that fails the test for any address other
// than the loopback test server's, so a broken filter shows up as a test
// failure rather than as traffic.

// refuseResolver fails any lookup: the default of the test harness.
type refuseResolver struct{ t *testing.T }

func (r refuseResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.t.Errorf("unexpected DNS lookup of %q", host)
	return nil, errors.New("test: no DNS")
}

// refuseDial fails any dial: the default of the test harness.
func refuseDial(t *testing.T) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, _, addr string) (net.Conn, error) {
		t.Errorf("dial attempted to %s", addr)
		return nil, errors.New("test: dial refused")
	}
}

// fakeResolver answers from a table and counts lookups per host.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	calls   map[string]int
}

func newResolver(answers map[string][]string) *fakeResolver {
	return &fakeResolver{answers: answers, calls: map[string]int{}}
}

func (r *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[host]++
	ips, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func (r *fakeResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// guardDial dials only the given loopback addresses and records every
// attempt; anything else fails the test.
type guardDial struct {
	t       *testing.T
	allowed []string
	mu      sync.Mutex
	dialed  []string
}

func (g *guardDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	g.dialed = append(g.dialed, addr)
	g.mu.Unlock()
	for _, a := range g.allowed {
		// Allowed or not, nothing but loopback is dialed.
		if a == addr && netguard.Loopback(addr) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	g.t.Errorf("dial attempted to %s", addr)
	return nil, errors.New("test: dial refused")
}

func (g *guardDial) attempts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.dialed...)
}

// fetchEnv is a loopback test server plus a Host that may only reach it.
type fetchEnv struct {
	srv      *httptest.Server
	addr     string // "127.0.0.1:port"
	port     string
	hs       *harness
	dial     *guardDial
	resolver *fakeResolver
}

func newFetchEnv(t *testing.T, handler http.Handler, answers map[string][]string, modify func(*Config)) *fetchEnv {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return fetchEnvFor(t, srv, answers, modify)
}

func fetchEnvFor(t *testing.T, srv *httptest.Server, answers map[string][]string, modify func(*Config)) *fetchEnv {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	env := &fetchEnv{srv: srv, addr: u.Host, port: u.Port(), resolver: newResolver(answers)}
	env.dial = &guardDial{t: t, allowed: []string{u.Host}}
	env.hs = newHarness(t, func(c *Config) {
		c.Dial = env.dial.dial
		c.Resolver = env.resolver
		if modify != nil {
			modify(c)
		}
	})
	return env
}

func egress(hosts ...string) manifest.Grants {
	return manifest.Grants{Egress: manifest.EgressGrants{Hosts: hosts}}
}

func (e *fetchEnv) fetch(g manifest.Grants, req *sandbox.FetchRequest) (*sandbox.FetchResponse, error) {
	return e.hs.host.Fetch(context.Background(), caller(g), req)
}

// testMux serves the endpoints the fetch tests use.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reply", "yes")
		fmt.Fprint(w, "hello")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Host, body)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			fmt.Fprint(w, "end")
			return
		}
		http.Redirect(w, r, "/chain/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("/size/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Write([]byte(strings.Repeat("x", n)))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	return mux
}

// TestFetchRefused covers the SSRF cases: each must be refused with
// ErrPermissionDenied and a security log line, without any dial. An IP
// literal gets past the grant check only when a grant names it (which also
// lets it past the address policy), so the address classes are reached
// through a granted name that resolves to each of them.
func TestFetchRefused(t *testing.T) {
	env := newFetchEnv(t, testMux(), nil, nil) // only for the port number
	p := env.port
	resolves := func(addr string) map[string][]string { return map[string][]string{"x.test": {addr}} }
	tests := []struct {
		name    string
		grants  []string
		url     string
		answers map[string][]string
		policy  bool // refused by the address policy, not for want of a grant
	}{
		{"private IPv4", []string{"x.test"}, "http://x.test/", resolves("10.0.0.1"), true},
		{"cloud metadata", []string{"x.test"}, "http://x.test/latest/meta-data/", resolves("169.254.169.254"), true},
		{"loopback", []string{"x.test"}, "http://x.test:" + p + "/ok", resolves("127.0.0.1"), true},
		{"mapped private", []string{"x.test"}, "http://x.test/", resolves("::ffff:10.0.0.1"), true},
		{"mapped metadata", []string{"x.test"}, "http://x.test/", resolves("::ffff:169.254.169.254"), true},
		{"mapped loopback", []string{"x.test"}, "http://x.test:" + p + "/ok", resolves("::ffff:127.0.0.1"), true},
		{"IPv6 loopback", []string{"x.test"}, "http://x.test/", resolves("::1"), true},
		{"IPv6 unique local", []string{"x.test"}, "http://x.test/", resolves("fc00::1"), true},
		{"IPv6 link-local", []string{"x.test"}, "http://x.test/", resolves("fe80::1"), true},
		{"AWS IPv6 metadata", []string{"x.test"}, "http://x.test/", resolves("fd00:ec2::254"), true},
		{"Alibaba metadata", []string{"x.test"}, "http://x.test/", resolves("100.100.100.200"), true},
		{"CGNAT", []string{"x.test"}, "http://x.test/", resolves("100.64.0.1"), true},
		{"unspecified", []string{"x.test"}, "http://x.test:" + p + "/ok", resolves("0.0.0.0"), true},
		{"IPv6 unspecified", []string{"x.test"}, "http://x.test/", resolves("::"), true},
		{"broadcast", []string{"x.test"}, "http://x.test/", resolves("255.255.255.255"), true},
		{"multicast", []string{"x.test"}, "http://x.test/", resolves("224.0.0.1"), true},
		{"private 172.16/12", []string{"x.test"}, "http://x.test/", resolves("172.31.255.255"), true},
		{"private 192.168/16", []string{"x.test"}, "http://x.test/", resolves("192.168.1.1"), true},
		{"NAT64 of private", []string{"x.test"}, "http://x.test/", resolves("64:ff9b::a00:1"), true},
		{"6to4 of loopback", []string{"x.test"}, "http://x.test/", resolves("2002:7f00:1::"), true},
		{"IPv4-compatible loopback", []string{"x.test"}, "http://x.test/", resolves("::127.0.0.1"), true},
		{"name resolving to private", []string{"internal.test"}, "http://internal.test/", map[string][]string{"internal.test": {"10.1.2.3"}}, true},
		{"name resolving to loopback", []string{"*.test"}, "http://localhost.test:" + p + "/ok", map[string][]string{"localhost.test": {"127.0.0.1"}}, true},
		{"name resolving to public and private", []string{"mixed.test"}, "http://mixed.test/", map[string][]string{"mixed.test": {"93.184.216.34", "10.0.0.1"}}, true},
		{"IP grant does not cover other private", []string{"api.test", "127.0.0.1"}, "http://api.test/", map[string][]string{"api.test": {"10.0.0.1"}}, true},
		{"CIDR grant does not cover other private", []string{"x.test", "10.0.0.0/24"}, "http://x.test/", resolves("10.0.1.1"), true},
		{"CIDR grant on other port", []string{"x.test", "10.0.0.0/8:8080"}, "http://x.test/", resolves("10.0.0.1"), true},

		{"private literal not named", []string{"x.test"}, "http://10.0.0.1/", nil, false},
		{"metadata literal not named", []string{"x.test"}, "http://169.254.169.254/latest/meta-data/", nil, false},
		{"loopback not granted by IP", []string{"x.test"}, "http://127.0.0.1:" + p + "/ok", nil, false},
		{"loopback granted only by name", []string{"localhost"}, "http://127.0.0.1:" + p + "/ok", nil, false},
		{"mapped private literal not named", []string{"x.test"}, "http://[::ffff:10.0.0.1]/", nil, false},
		{"IP grant on other port", []string{"10.0.0.1:8080"}, "http://10.0.0.1/", nil, false},
		{"CIDR grant on other port, literal", []string{"10.0.0.0/8:8080"}, "http://10.0.0.1/", nil, false},
		{"wildcard does not cover apex", []string{"*.example.com"}, "http://example.com/", nil, false},
		{"name grant does not cover IP", []string{"example.com"}, "http://93.184.216.34/", nil, false},
		{"IP grant does not cover name", []string{"127.0.0.1"}, "http://evil.test:" + p + "/ok", map[string][]string{"evil.test": {"127.0.0.1"}}, false},
		{"port mismatch", []string{"api.example.com:443"}, "http://api.example.com/", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fetchEnvFor(t, env.srv, tt.answers, nil)
			_, err := env.fetch(egress(tt.grants...), &sandbox.FetchRequest{URL: tt.url})
			requireErrorIs(t, err, aegis.ErrPermissionDenied)
			requireOneDenial(t, env.hs.logs, "fetch", "")
			if reason := security(env.hs.logs)[0][logkey.Reason]; (reason != "host not granted") != tt.policy {
				t.Errorf("refused for %q, want the address policy: %v", reason, tt.policy)
			}
			if server, _ := security(env.hs.logs)[0][logkey.Reason].(string); tt.policy && tt.answers != nil {
				// The server's log names the address a name resolved to;
				// the function's log, which its developer reads, only the
				// class.
				addr := server[strings.LastIndex(server, " ")+1:]
				if d := env.hs.flogs.denials; len(d) != 1 || strings.Contains(d[0], addr) || !strings.HasSuffix(d[0], " address") {
					t.Errorf("function log denials %q (server's reason %q)", d, server)
				}
			}
			if d := env.dial.attempts(); len(d) != 0 {
				t.Fatalf("dialed %v", d)
			}
		})
	}
}

// TestFetchLoopbackGranted reaches the loopback server through the real
// transport once a grant names its address.
func TestFetchLoopbackGranted(t *testing.T) {
	for _, grant := range []string{"127.0.0.1", "127.0.0.0/8", "::ffff:127.0.0.1", "127.0.0.1:PORT", "::ffff:127.0.0.0/104"} {
		t.Run(grant, func(t *testing.T) {
			env := newFetchEnv(t, testMux(), nil, nil)
			g := strings.ReplaceAll(grant, "PORT", env.port)
			resp, err := env.fetch(egress(g), &sandbox.FetchRequest{
				Method: "post", URL: env.srv.URL + "/echo", Body: []byte("ping"),
			})
			requireErrorIs(t, err, nil)
			if want := "POST " + env.addr + " ping"; resp.Status != 200 || string(resp.Body) != want {
				t.Fatalf("got %d %q, want 200 %q", resp.Status, resp.Body, want)
			}
			if d := env.dial.attempts(); len(d) != 1 || d[0] != env.addr {
				t.Fatalf("dials = %v", d)
			}
		})
	}
}

// TestFetchPinsResolvedAddress shows the address checked is the address
// dialed: the name is resolved once, by the Host, and the dialer only ever
// sees the IP, while the server still sees the original Host header.
func TestFetchPinsResolvedAddress(t *testing.T) {
	env := newFetchEnv(t, testMux(), map[string][]string{"api.test": {"127.0.0.1"}}, nil)
	resp, err := env.fetch(egress("api.test", "127.0.0.1"), &sandbox.FetchRequest{URL: "http://API.test.:" + env.port + "/echo"})
	requireErrorIs(t, err, nil)
	if want := "GET api.test:" + env.port + " "; string(resp.Body) != want {
		t.Fatalf("body %q, want %q", resp.Body, want)
	}
	if n := env.resolver.count("api.test"); n != 1 {
		t.Fatalf("resolver called %d times, want 1", n)
	}
	if d := env.dial.attempts(); len(d) != 1 || d[0] != env.addr {
		t.Fatalf("dials = %v, want [%s]", d, env.addr)
	}
}

// TestFetchRebindingOnRedirect has the resolver answer with the granted
// loopback address first and a private address after: the redirect back to
// the same name is resolved and checked again, and refused.
func TestFetchRebindingOnRedirect(t *testing.T) {
	res := newResolver(map[string][]string{"api.test": {"127.0.0.1"}})
	env := newFetchEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res.mu.Lock()
		res.answers["api.test"] = []string{"10.0.0.1"} // rebind after the first lookup
		res.mu.Unlock()
		http.Redirect(w, r, "/again", http.StatusFound)
	}), nil, func(c *Config) { c.Resolver = res })
	_, err := env.fetch(egress("api.test", "127.0.0.1"), &sandbox.FetchRequest{URL: "http://api.test:" + env.port + "/"})
	requireErrorIs(t, err, aegis.ErrPermissionDenied)
	if n := res.count("api.test"); n != 2 {
		t.Fatalf("resolver called %d times, want 2 (once per hop)", n)
	}
	if d := env.dial.attempts(); len(d) != 1 {
		t.Fatalf("dials = %v", d)
	}
}

func TestFetchTLSVerifiesHostName(t *testing.T) {
	srv := httptest.NewUnstartedServer(testMux())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	answers := map[string][]string{"example.com": {"127.0.0.1"}, "other.test": {"127.0.0.1"}}
	env := fetchEnvFor(t, srv, answers, func(c *Config) { c.RootCAs = pool })

	// The test certificate is valid for example.com.
	resp, err := env.fetch(egress("example.com", "other.test", "127.0.0.1"), &sandbox.FetchRequest{URL: "https://example.com:" + env.port + "/ok"})
	requireErrorIs(t, err, nil)
	if resp.Status != 200 || string(resp.Body) != "hello" {
		t.Fatalf("got %d %q", resp.Status, resp.Body)
	}
	// Pinned to the same address, a name the certificate does not cover fails.
	_, err = env.fetch(egress("example.com", "other.test", "127.0.0.1"), &sandbox.FetchRequest{URL: "https://other.test:" + env.port + "/ok"})
	requireErrorIs(t, err, aegis.ErrUnavailable)
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error %q does not mention the certificate", err)
	}
}

func TestFetchRedirects(t *testing.T) {
	env := newFetchEnv(t, testMux(), nil, nil)
	base := env.srv.URL
	answers := map[string][]string{
		"internal.test": {"10.1.2.3"}, "api.test": {"127.0.0.1"},
		"private.test": {"10.0.0.1"}, "metadata.test": {"169.254.169.254"},
	}
	tests := []struct {
		name   string
		grants []string
		url    string
		want   error
		body   string
	}{
		{"to private address", []string{"127.0.0.1", "*.test"}, base + "/redirect?to=http://private.test/", aegis.ErrPermissionDenied, ""},
		{"to metadata", []string{"127.0.0.1", "*.test"}, base + "/redirect?to=http://metadata.test/latest/", aegis.ErrPermissionDenied, ""},
		{"to private literal", []string{"127.0.0.1", "*.test"}, base + "/redirect?to=http://10.0.0.1/", aegis.ErrPermissionDenied, ""},
		{"to name resolving to private", []string{"127.0.0.1", "internal.test"}, base + "/redirect?to=http://internal.test/", aegis.ErrPermissionDenied, ""},
		{"to host not granted", []string{"127.0.0.1"}, base + "/redirect?to=http://api.test:" + env.port + "/ok", aegis.ErrPermissionDenied, ""},
		{"to granted name", []string{"127.0.0.1", "api.test"}, base + "/redirect?to=http://api.test:" + env.port + "/ok", nil, "hello"},
		{"to other scheme", []string{"127.0.0.1"}, base + "/redirect?to=file:///etc/passwd", aegis.ErrInvalidArgument, ""},
		{"same host", []string{"127.0.0.1"}, base + "/redirect?to=/ok", nil, "hello"},
		{"five redirects", []string{"127.0.0.1"}, base + "/chain/5", nil, "end"},
		{"six redirects", []string{"127.0.0.1"}, base + "/chain/6", aegis.ErrLimitExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fetchEnvFor(t, env.srv, answers, nil)
			resp, err := env.fetch(egress(tt.grants...), &sandbox.FetchRequest{URL: tt.url})
			requireErrorIs(t, err, tt.want)
			if tt.want == nil && string(resp.Body) != tt.body {
				t.Fatalf("body %q, want %q", resp.Body, tt.body)
			}
			if errors.Is(tt.want, aegis.ErrPermissionDenied) {
				requireOneDenial(t, env.hs.logs, "fetch", "")
			}
			for _, d := range env.dial.attempts() {
				if d != env.addr {
					t.Fatalf("dialed %s", d)
				}
			}
		})
	}
}

func TestFetchLimits(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*Config)
		req     func(base string) *sandbox.FetchRequest
		ctx     func() (context.Context, context.CancelFunc)
		want    error
		maxTime time.Duration
	}{
		{
			name:   "response at cap",
			modify: func(c *Config) { c.FetchMaxResponse = 1024 },
			req:    func(b string) *sandbox.FetchRequest { return &sandbox.FetchRequest{URL: b + "/size/1024"} },
		},
		{
			name:   "response over cap",
			modify: func(c *Config) { c.FetchMaxResponse = 1024 },
			req:    func(b string) *sandbox.FetchRequest { return &sandbox.FetchRequest{URL: b + "/size/1025"} },
			want:   aegis.ErrLimitExceeded,
		},
		{
			name:   "request body over cap",
			modify: func(c *Config) { c.FetchMaxRequest = 10 },
			req: func(b string) *sandbox.FetchRequest {
				return &sandbox.FetchRequest{Method: "POST", URL: b + "/echo", Body: make([]byte, 11)}
			},
			want: aegis.ErrLimitExceeded,
		},
		{
			name:    "fetch timeout",
			modify:  func(c *Config) { c.FetchTimeout = 100 * time.Millisecond },
			req:     func(b string) *sandbox.FetchRequest { return &sandbox.FetchRequest{URL: b + "/slow"} },
			want:    aegis.ErrLimitExceeded,
			maxTime: 2 * time.Second,
		},
		{
			name: "caller deadline shorter than fetch timeout",
			req:  func(b string) *sandbox.FetchRequest { return &sandbox.FetchRequest{URL: b + "/slow"} },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			want:    aegis.ErrLimitExceeded,
			maxTime: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newFetchEnv(t, testMux(), nil, tt.modify)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			_, err := env.hs.host.Fetch(ctx, caller(egress("127.0.0.1")), tt.req(env.srv.URL))
			requireErrorIs(t, err, tt.want)
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Fatalf("took %s", time.Since(start))
			}
		})
	}
}

func TestFetchHeaders(t *testing.T) {
	var got http.Header
	var gotHost string
	env := newFetchEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotHost = r.Header.Clone(), r.Host
		w.Header().Set("X-Reply", "yes")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
	}), nil, nil)
	_, err := env.fetch(egress("127.0.0.1"), &sandbox.FetchRequest{
		URL: env.srv.URL + "/",
		Headers: map[string]string{
			"Host": "internal.admin", "Connection": "X-Drop-Me, keep-alive", "X-Drop-Me": "1",
			"Keep-Alive": "timeout=5", "Upgrade": "h2c", "Proxy-Authorization": "Basic eA==",
			"TE": "trailers", "Transfer-Encoding": "chunked", "Trailer": "X", "Proxy-Connection": "keep-alive",
			"x-custom": "kept", "Authorization": "Bearer t",
		},
	})
	requireErrorIs(t, err, nil)
	if gotHost != env.addr {
		t.Errorf("server saw Host %q, want %q", gotHost, env.addr)
	}
	for _, h := range []string{"X-Drop-Me", "Keep-Alive", "Upgrade", "Proxy-Authorization", "Te", "Trailer", "Proxy-Connection"} {
		if v := got.Get(h); v != "" {
			t.Errorf("header %s reached the server: %q", h, v)
		}
	}
	if got.Get("X-Custom") != "kept" || got.Get("Authorization") != "Bearer t" {
		t.Errorf("end-to-end headers lost: %v", got)
	}
	if len(got.Values("Transfer-Encoding")) != 0 {
		t.Errorf("Transfer-Encoding reached the server")
	}

	resp, err := env.fetch(egress("127.0.0.1"), &sandbox.FetchRequest{URL: env.srv.URL + "/"})
	requireErrorIs(t, err, nil)
	if resp.Headers["X-Reply"] != "yes" || resp.Headers["X-Multi"] != "a, b" {
		t.Errorf("response headers = %v", resp.Headers)
	}
}

func TestFetchInvalidRequest(t *testing.T) {
	tests := []struct {
		name string
		req  *sandbox.FetchRequest
	}{
		{"nil request", nil},
		{"CONNECT", &sandbox.FetchRequest{Method: "CONNECT", URL: "https://api.example.com/"}},
		{"TRACE", &sandbox.FetchRequest{Method: "TRACE", URL: "https://api.example.com/"}},
		{"empty URL", &sandbox.FetchRequest{}},
		{"ftp", &sandbox.FetchRequest{URL: "ftp://api.example.com/"}},
		{"file", &sandbox.FetchRequest{URL: "file:///etc/passwd"}},
		{"no host", &sandbox.FetchRequest{URL: "http:///x"}},
		{"opaque", &sandbox.FetchRequest{URL: "http:api.example.com"}},
		{"relative", &sandbox.FetchRequest{URL: "/x"}},
		{"user info", &sandbox.FetchRequest{URL: "http://user:pw@api.example.com/"}},
		{"user info trick", &sandbox.FetchRequest{URL: "http://api.example.com@10.0.0.1/"}},
		{"IPv6 zone", &sandbox.FetchRequest{URL: "http://[fe80::1%25eth0]/"}},
		{"port 0", &sandbox.FetchRequest{URL: "http://api.example.com:0/"}},
		{"port too big", &sandbox.FetchRequest{URL: "http://api.example.com:65536/"}},
		{"empty port", &sandbox.FetchRequest{URL: "http://api.example.com:/"}},
		{"decimal IPv4", &sandbox.FetchRequest{URL: "http://2130706433/"}},
		{"short IPv4", &sandbox.FetchRequest{URL: "http://127.1/"}},
		{"octal IPv4", &sandbox.FetchRequest{URL: "http://0177.0.0.1/"}},
		{"hex IPv4", &sandbox.FetchRequest{URL: "http://0x7f.0.0.1/"}},
		{"non-ASCII host", &sandbox.FetchRequest{URL: "http://bücher.example/"}},
		{"bracketed IPv4", &sandbox.FetchRequest{URL: "http://[127.0.0.1]/"}},
		{"header name newline", &sandbox.FetchRequest{URL: "https://api.example.com/", Headers: map[string]string{"X-A\r\nX-B": "1"}}},
		{"header value newline", &sandbox.FetchRequest{URL: "https://api.example.com/", Headers: map[string]string{"X-A": "1\r\nHost: evil"}}},
		{"header value NUL", &sandbox.FetchRequest{URL: "https://api.example.com/", Headers: map[string]string{"X-A": "1\x00"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil)
			_, err := hs.host.Fetch(context.Background(), caller(egress("*.example.com")), tt.req)
			requireErrorIs(t, err, aegis.ErrInvalidArgument)
		})
	}
}

// TestFetchLogsOutboundCall checks the Info line of an outbound call and
// that it carries no header, body, path or query.
func TestFetchLogsOutboundCall(t *testing.T) {
	env := newFetchEnv(t, testMux(), nil, nil)
	_, err := env.fetch(egress("127.0.0.1"), &sandbox.FetchRequest{
		Method: "POST", URL: env.srv.URL + "/echo?token=QUERY-SECRET",
		Headers: map[string]string{"Authorization": "Bearer HEADER-SECRET"},
		Body:    []byte("BODY-SECRET"),
	})
	requireErrorIs(t, err, nil)
	lines := env.hs.logs.Messages("fetch")
	if len(lines) != 1 {
		t.Fatalf("got %d fetch log lines:\n%s", len(lines), env.hs.logs)
	}
	l := lines[0]
	if l["level"] != "INFO" || l[logkey.App] != "diary" || l[logkey.Function] != "save-entry" ||
		l[logkey.RequestID] != "req-0123456789" || l[logkey.Host] != env.addr || l[logkey.Status] != float64(200) {
		t.Errorf("log line = %v", l)
	}
	if _, ok := l[logkey.Duration]; !ok {
		t.Errorf("log line has no duration: %v", l)
	}
	for _, secret := range []string{"QUERY-SECRET", "HEADER-SECRET", "BODY-SECRET", "/echo"} {
		if strings.Contains(env.hs.logs.String(), secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

// TestFetchDialOnlyCheckedAddresses calls the transport's dialer directly
// with an address that was never checked: it must refuse without dialing.
func TestFetchDialOnlyCheckedAddresses(t *testing.T) {
	hs := newHarness(t, nil)
	f := &fetch{h: hs.host, c: caller(egress("10.0.0.0/8")), pins: map[string][]netip.Addr{}}
	_, err := f.dial(context.Background(), "tcp", "10.0.0.1:80")
	requireErrorIs(t, err, aegis.ErrPermissionDenied)
}

// TestFetchConcurrent runs allowed and refused fetches at once on one Host
// (run with -race): per-call pins must not leak between callers.
func TestFetchConcurrent(t *testing.T) {
	env := newFetchEnv(t, testMux(), map[string][]string{"loop.test": {"127.0.0.1"}}, nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, url, want := egress("127.0.0.1"), env.srv.URL+"/ok", error(nil)
			if i%2 == 1 {
				// The same loopback address, by a granted name: not named.
				g, url, want = egress("loop.test"), "http://loop.test:"+env.port+"/ok", aegis.ErrPermissionDenied
			}
			resp, err := env.fetch(g, &sandbox.FetchRequest{URL: url})
			if !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Errorf("fetch %d: %v, want %v", i, err, want)
			}
			if want == nil && err == nil && string(resp.Body) != "hello" {
				t.Errorf("fetch %d: body %q", i, resp.Body)
			}
		}()
	}
	wg.Wait()
	if n := len(env.dial.attempts()); n != 8 {
		t.Fatalf("%d dials, want 8", n)
	}
}
