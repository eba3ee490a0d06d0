package capability

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Fetch limits that are not configurable: they bound parsing, not traffic.
const (
	maxURLLength      = 8 << 10
	maxRequestHeaders = 100
	maxHeaderValue    = 8 << 10
	maxResponseHeader = 64 << 10
)

// fetchMethods are the methods a guest may use. CONNECT would open a
// tunnel past every check here and TRACE echoes headers back; neither is
// needed to call an API.
var fetchMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// hopByHop headers describe one connection, not the request; a guest must
// not set them (request smuggling, proxy credentials) and the transport
// owns them.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// transportOwned request headers are derived from the URL and the body; a
// guest-supplied Host would let it reach a virtual host it was not granted.
var transportOwned = map[string]bool{"Host": true, "Content-Length": true}

// Fetch makes an outbound HTTP request for the guest. In order: the method,
// URL, body size and headers are validated; the host must match a pattern
// in grants.Egress.Hosts; the host is resolved here, and every address must
// be public unless a grant names it (IP literal or CIDR); the connection
// then goes to those checked addresses only, so a second DNS answer cannot
// redirect it (DNS rebinding). Redirects go through the same checks. The
// whole exchange is bounded by FetchTimeout and the caller's deadline, and
// the response body by FetchMaxResponse.
func (h *Host) Fetch(ctx context.Context, c *sandbox.Caller, req *sandbox.FetchRequest) (*sandbox.FetchResponse, error) {
	if req == nil {
		return nil, invalid("fetch request is empty")
	}
	method, err := fetchMethod(req.Method)
	if err != nil {
		return nil, err
	}
	u, t, err := parseFetchURL(req.URL)
	if err != nil {
		return nil, err
	}
	if int64(len(req.Body)) > h.cfg.FetchMaxRequest {
		return nil, fmt.Errorf("fetch %s: request body of %d bytes over the %d byte cap: %w",
			t.host, len(req.Body), h.cfg.FetchMaxRequest, aegis.ErrLimitExceeded)
	}
	header, err := requestHeader(req.Headers)
	if err != nil {
		return nil, err
	}
	limits, meter := capsOf(c)
	if meter.Fetches >= limits.MaxFetches {
		return nil, h.overCap(ctx, c, "fetch", t.host, "max_fetches", int64(limits.MaxFetches),
			"this invocation has made as many fetch calls as it may")
	}
	egressLeft := int64(limits.MaxEgress) - meter.EgressBytes
	if int64(len(req.Body)) > egressLeft {
		return nil, h.overCap(ctx, c, "fetch", t.host, "max_egress", int64(limits.MaxEgress),
			fmt.Sprintf("a request body of %d bytes would move more bytes than it may", len(req.Body)))
	}
	meter.Fetches++

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, h.cfg.FetchTimeout)
	defer cancel()

	f := &fetch{h: h, c: c, grants: egressPatterns(c), pins: map[string][]netip.Addr{}}
	if err := f.authorize(ctx, t); err != nil {
		return nil, f.result(parent, ctx, t, err)
	}
	client, transport := f.client()
	defer transport.CloseIdleConnections()

	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return nil, invalid("fetch: %v", err)
	}
	hreq.Header = header
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, f.result(parent, ctx, t, err)
	}
	defer resp.Body.Close()
	// The request body has left; what is left of max_egress bounds the
	// response as much as the fetch cap does, so a large download stops
	// where the function's allowance ends rather than after it.
	meter.EgressBytes += int64(len(req.Body))
	egressLeft -= int64(len(req.Body))
	readCap := min(h.cfg.FetchMaxResponse, egressLeft)
	body, err := io.ReadAll(io.LimitReader(resp.Body, readCap+1))
	meter.EgressBytes += min(int64(len(body)), readCap)
	if err != nil {
		return nil, f.result(parent, ctx, t, err)
	}
	if int64(len(body)) > egressLeft {
		return nil, h.overCap(ctx, c, "fetch", resp.Request.URL.Hostname(), "max_egress", int64(limits.MaxEgress),
			"the response would move more bytes than it may")
	}
	if int64(len(body)) > h.cfg.FetchMaxResponse {
		return nil, fmt.Errorf("fetch %s: response body over the %d byte cap: %w",
			resp.Request.URL.Hostname(), h.cfg.FetchMaxResponse, aegis.ErrLimitExceeded)
	}
	return &sandbox.FetchResponse{Status: resp.StatusCode, Headers: responseHeader(resp.Header), Body: body}, nil
}

// fetch is the state of one Fetch call: the caller's parsed grants and the
// addresses each host:port was checked to resolve to.
type fetch struct {
	h      *Host
	c      *sandbox.Caller
	grants []manifest.HostPattern

	mu   sync.Mutex
	pins map[string][]netip.Addr // "host:port" → checked addresses
}

// egressPatterns returns the caller's egress grants, parsed when its
// function was built (manifest.EgressGrants.Patterns, the grammar deploy
// validated them with): nothing is parsed per request.
func egressPatterns(c *sandbox.Caller) []manifest.HostPattern {
	if c == nil {
		return nil
	}
	return c.Egress
}

// target is where one outbound request goes, in canonical form.
type target struct {
	host string     // lower case, no trailing dot; an IP literal without brackets
	addr netip.Addr // valid when host is an IP literal, unmapped
	port uint16     // explicit or the scheme's default
}

// authorize checks one hop: the host against the grants, then every address
// it resolves to against the address policy, and pins the result.
func (f *fetch) authorize(ctx context.Context, t target) error {
	granted := false
	for _, p := range f.grants {
		if p.Match(t.host, t.port) {
			granted = true
			break
		}
	}
	resource := net.JoinHostPort(t.host, strconv.Itoa(int(t.port)))
	if !granted {
		return f.h.deny(ctx, f.c, denial{
			capability: "fetch", resource: resource, reason: "host not granted",
			msg: fmt.Sprintf("fetch to host %q not granted", t.host),
		})
	}
	addrs, err := f.resolve(ctx, t)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		class := addrClass(a)
		if class == "" || f.named(a, t.port) {
			continue
		}
		// The guest learns the class, not the address: a resolved internal
		// address is itself information about the network.
		return f.h.deny(ctx, f.c, denial{
			capability: "fetch", resource: resource,
			reason: class + " address", detail: a.String(),
			msg: fmt.Sprintf("fetch to host %q not granted: it resolves to a %s address; only a grant naming the address allows that", t.host, class),
		})
	}
	f.h.graphHost(f.c, f.grants, t)
	f.mu.Lock()
	f.pins[resource] = addrs
	f.mu.Unlock()
	return nil
}

// named reports whether an IP or CIDR grant names the address.
func (f *fetch) named(a netip.Addr, port uint16) bool {
	for _, p := range f.grants {
		if p.NamesAddr(a, port) {
			return true
		}
	}
	return false
}

// resolve returns the unmapped, de-duplicated addresses of the target,
// asking the resolver exactly once per hop.
func (f *fetch) resolve(ctx context.Context, t target) ([]netip.Addr, error) {
	if t.addr.IsValid() {
		return []netip.Addr{t.addr}, nil
	}
	ips, err := f.h.cfg.Resolver.LookupIPAddr(ctx, t.host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.h.log.LogAttrs(ctx, slog.LevelInfo, "fetch resolve failed", f.attrs(t.host,
			slog.String(logkey.Error, err.Error()))...)
		return nil, fmt.Errorf("fetch: resolve host %q failed: %w", t.host, aegis.ErrUnavailable)
	}
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("fetch: host %q has no addresses: %w", t.host, aegis.ErrUnavailable)
	}
	return addrs, nil
}

// client builds a client whose transport only dials pinned addresses, uses
// no proxy from the environment, and re-checks every redirect. A transport
// per call keeps pins from leaking between callers with different grants.
func (f *fetch) client() (*http.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            f.dial,
		TLSClientConfig:        &tls.Config{RootCAs: f.h.cfg.RootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: maxResponseHeader,
	}
	return &http.Client{
		Transport:     &loggedTransport{next: tr, f: f},
		CheckRedirect: f.redirect,
	}, tr
}

// dial connects to the checked addresses of addr in turn. It never
// resolves: a host:port that was not checked is refused. TLS, layered on
// top by the transport, still verifies the certificate against the host
// name of the URL.
func (f *fetch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := parsePort(portStr)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	addrs := f.pins[net.JoinHostPort(strings.ToLower(host), strconv.Itoa(int(port)))]
	f.mu.Unlock()
	if len(addrs) == 0 {
		return nil, fmt.Errorf("dial %s: address was not checked: %w", addr, aegis.ErrPermissionDenied)
	}
	var errs []error
	for _, a := range addrs {
		conn, err := f.h.cfg.Dial(ctx, network, netip.AddrPortFrom(a, port).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// redirect re-applies the URL, grant and address checks to every hop.
func (f *fetch) redirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("fetch: more than %d redirects: %w", MaxRedirects, aegis.ErrLimitExceeded)
	}
	u, t, err := parseFetchURL(req.URL.String())
	if err != nil {
		return fmt.Errorf("fetch: redirect: %w", err)
	}
	if err := f.authorize(req.Context(), t); err != nil {
		return err
	}
	req.URL, req.Host = u, ""
	return nil
}

// result turns a failure into the error the guest sees: our own errors pass
// through; running out of time is a limit; anything else is unavailable,
// stripped of the URL (which may carry tokens in its query).
func (f *fetch) result(parent, ctx context.Context, t target, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	for _, s := range []error{aegis.ErrPermissionDenied, aegis.ErrLimitExceeded, aegis.ErrInvalidArgument, aegis.ErrUnavailable} {
		if errors.Is(err, s) {
			return err
		}
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("fetch %s: timed out after %s: %w", t.host, f.h.cfg.FetchTimeout, aegis.ErrLimitExceeded)
		}
		if errors.Is(parent.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("fetch %s: invocation deadline reached: %w", t.host, aegis.ErrLimitExceeded)
		}
		return fmt.Errorf("fetch %s: canceled: %w", t.host, aegis.ErrUnavailable)
	}
	return fmt.Errorf("fetch %s: %w: %s", t.host, aegis.ErrUnavailable, err.Error())
}

// attrs are the keys of an outbound call log line.
func (f *fetch) attrs(host string, more ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String(logkey.App, f.c.App),
		slog.String(logkey.Function, f.c.Function),
		slog.String(logkey.Version, f.c.Version),
		slog.String(logkey.RequestID, f.c.RequestID),
		slog.String(logkey.Host, host),
	}, more...)
}

// loggedTransport writes one Info line per outbound request (each redirect
// hop is one): who, where, outcome and duration. Never headers, bodies or
// the path and query, which may carry tokens.
type loggedTransport struct {
	next http.RoundTripper
	f    *fetch
}

func (t *loggedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	attrs := t.f.attrs(req.URL.Host, slog.String(logkey.Method, req.Method))
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	attrs = append(attrs, slog.Int(logkey.Status, status), slog.Duration(logkey.Duration, time.Since(start)))
	if err != nil {
		attrs = append(attrs, slog.String(logkey.Error, err.Error()))
	}
	t.f.h.log.LogAttrs(req.Context(), slog.LevelInfo, "fetch", attrs...)
	return resp, err
}

func fetchMethod(m string) (string, error) {
	if m == "" {
		return http.MethodGet, nil
	}
	up := strings.ToUpper(m)
	if !fetchMethods[up] {
		return "", invalid("fetch method %q not supported", m)
	}
	return up, nil
}

// parseFetchURL checks a guest URL and returns it in canonical form (lower
// case scheme and host, no trailing dot, no fragment) with its target. The
// canonical host is what grants are matched against and what the transport
// dials by, so the two can never disagree.
func parseFetchURL(raw string) (*url.URL, target, error) {
	if raw == "" || len(raw) > maxURLLength {
		return nil, target{}, invalid("fetch URL must be 1 to %d bytes", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, target{}, invalid("fetch URL is malformed")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, target{}, invalid("fetch URL scheme must be http or https")
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, target{}, invalid("fetch URL has no host")
	}
	if u.User != nil {
		return nil, target{}, invalid("fetch URL must not carry user info; send an Authorization header")
	}
	hostname, portStr := u.Hostname(), u.Port()
	var t target
	switch {
	case portStr != "":
		p, err := parsePort(portStr)
		if err != nil {
			return nil, target{}, invalid("fetch URL: %v", err)
		}
		t.port = p
	case strings.HasSuffix(u.Host, ":"):
		return nil, target{}, invalid("fetch URL has an empty port")
	case scheme == "https":
		t.port = 443
	default:
		t.port = 80
	}
	hostPart := ""
	if a, err := netip.ParseAddr(hostname); err == nil {
		if a.Zone() != "" {
			return nil, target{}, invalid("fetch URL must not use an IPv6 zone")
		}
		if a.Is6() != strings.HasPrefix(u.Host, "[") {
			return nil, target{}, invalid("fetch URL host is malformed")
		}
		t.host, t.addr, hostPart = a.String(), a.Unmap(), a.String()
		if a.Is6() {
			hostPart = "[" + hostPart + "]"
		}
	} else {
		if strings.HasPrefix(u.Host, "[") {
			return nil, target{}, invalid("fetch URL host is malformed")
		}
		name := strings.TrimSuffix(strings.ToLower(hostname), ".")
		if err := manifest.CheckHostName(name); err != nil {
			return nil, target{}, invalid("fetch URL: host %q: %v", name, err)
		}
		t.host, hostPart = name, name
	}
	if portStr != "" {
		hostPart += ":" + strconv.Itoa(int(t.port)) // "080" becomes "80", the form pins use
	}
	c := *u
	c.Scheme, c.Host, c.Fragment, c.RawFragment = scheme, hostPart, "", ""
	return &c, t, nil
}

// parsePort reads a URL's port. Unlike a grant's, it may have leading
// zeros ("080" is 80, as every URL parser reads it); the canonical URL
// spells it without them.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q must be a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// requestHeader copies the guest's headers, dropping hop-by-hop ones (and
// any that Connection names) and refusing malformed names or values.
func requestHeader(in map[string]string) (http.Header, error) {
	if len(in) > maxRequestHeaders {
		return nil, invalid("fetch has more than %d headers", maxRequestHeaders)
	}
	drop := map[string]bool{}
	for k, v := range in {
		if http.CanonicalHeaderKey(k) == "Connection" {
			for _, name := range strings.Split(v, ",") {
				drop[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
			}
		}
	}
	out := make(http.Header, len(in))
	for k, v := range in {
		if !validHeaderName(k) {
			return nil, invalid("fetch header name %q is malformed", k)
		}
		if len(v) > maxHeaderValue || !validHeaderValue(v) {
			return nil, invalid("fetch header %q has a malformed or over-long value", k)
		}
		name := http.CanonicalHeaderKey(k)
		if hopByHop[name] || transportOwned[name] || drop[name] {
			continue
		}
		out.Set(name, v)
	}
	return out, nil
}

// responseHeader flattens the response headers for the guest, without the
// hop-by-hop ones.
func responseHeader(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		if hopByHop[k] {
			continue
		}
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// validHeaderName accepts an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters other than tab, so a value
// cannot start a new header line.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
