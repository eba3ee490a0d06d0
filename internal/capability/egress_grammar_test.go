package capability

import (
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

type egressCase struct {
	pattern string
	deploy  bool              // false: the deploy is refused, naming the pattern
	grants  map[string]string // URL → "address:port" fetch would connect to
	refuses []string          // URLs refused before any connection
}

// egressGrammar is every egress pattern docs/manifest.md writes down, the
// ones the two grammars used to disagree on, and a few more: whether a
// deploy accepts it and, when it does, which URLs fetch lets through (to
// which address) and which it refuses. Names resolve as egressAnswers says.
var egressGrammar = []egressCase{
	// The examples of docs/manifest.md.
	{"hooks.slack.com:443", true, map[string]string{"https://hooks.slack.com/services/x": "93.184.216.34:443"},
		[]string{"http://hooks.slack.com/", "https://a.hooks.slack.com/", "https://93.184.216.34/"}},
	{"api.example.com", true, map[string]string{
		"https://api.example.com/v1":     "93.184.216.34:443",
		"http://api.example.com:8080/":   "93.184.216.34:8080",
		"https://API.Example.com./upper": "93.184.216.34:443",
	}, []string{"https://x.api.example.com/", "https://example.com/", "https://api.example.com.evil.test/", "https://93.184.216.34/"}},
	{"example.com", true, map[string]string{"https://example.com/": "93.184.216.34:443"}, []string{"https://api.example.com/"}},
	{"*.example.com", true, map[string]string{
		"https://api.example.com/": "93.184.216.34:443",
		"http://a.b.example.com/":  "93.184.216.34:80",
	}, []string{"https://example.com/", "https://evilexample.com/", "https://93.184.216.34/"}},
	{"xn--bcher-kva.example", true, map[string]string{"https://xn--bcher-kva.example/": "93.184.216.34:443"}, nil},
	{"127.1", false, nil, nil},
	{"0x7f.1", false, nil, nil},
	// Documentation addresses, which fetch refuses unless a grant names them.
	{"203.0.113.7", true, map[string]string{
		"http://203.0.113.7/":          "203.0.113.7:80",
		"https://203.0.113.7:8443/":    "203.0.113.7:8443",
		"http://[::ffff:203.0.113.7]/": "203.0.113.7:80",
	}, []string{"http://203.0.113.8/", "http://doc.test/"}},
	{"2001:db8::1", true, map[string]string{"http://[2001:db8::1]/": "[2001:db8::1]:80"}, []string{"http://[2001:db8::2]/"}},
	{"::ffff:10.0.0.5", true, map[string]string{"http://10.0.0.5/": "10.0.0.5:80"}, []string{"http://10.0.0.6/"}},
	{"10.0.0.5", true, map[string]string{"http://10.0.0.5:8080/": "10.0.0.5:8080"}, []string{"http://private.test/"}},
	{"10.0.0.0/8", true, map[string]string{"http://10.1.2.3/": "10.1.2.3:80", "https://10.255.255.255/": "10.255.255.255:443"},
		[]string{"http://11.0.0.1/", "http://172.16.0.1/", "http://private.test/"}},
	{"2001:db8::/32", true, map[string]string{"http://[2001:db8:1::1]/": "[2001:db8:1::1]:80"}, []string{"http://[2001:db9::1]/"}},
	{"10.0.0.5/8", false, nil, nil},
	{"0.0.0.0/0", false, nil, nil},
	{"::/0", false, nil, nil},
	{"::ffff:0.0.0.0/96", false, nil, nil},
	{"api.example.com:443", true, map[string]string{"https://api.example.com/": "93.184.216.34:443"},
		[]string{"http://api.example.com/", "https://api.example.com:8443/"}},
	{"10.0.0.0/8:443", true, map[string]string{"https://10.1.2.3/": "10.1.2.3:443"}, []string{"http://10.1.2.3/"}},
	{"[2001:db8::1]:443", true, map[string]string{"https://[2001:db8::1]/": "[2001:db8::1]:443"}, []string{"http://[2001:db8::1]/"}},
	{"[2001:db8::/32]:443", true, map[string]string{"https://[2001:db8::5]/": "[2001:db8::5]:443"}, []string{"http://[2001:db8::5]/"}},
	{"Api.Example.com", true, map[string]string{"https://api.example.com/": "93.184.216.34:443"}, nil},
	{"example.com.", false, nil, nil},
	{"*", false, nil, nil},
	{"*:443", false, nil, nil},

	// More of what the two grammars disagreed on, and neighbours.
	{"localhost", true, nil, []string{"http://localhost/", "http://127.0.0.1/"}}, // resolves to loopback: a name is not enough
	{"my_service.internal", true, map[string]string{"http://my_service.internal/": "93.184.216.34:80"}, nil},
	{"*.Example.COM:8443", true, map[string]string{"https://a.example.com:8443/": "93.184.216.34:8443"}, []string{"https://a.example.com/"}},
	{"192.168.1.10:5432", true, map[string]string{"http://192.168.1.10:5432/": "192.168.1.10:5432"}, []string{"http://192.168.1.10/"}},
	{"::ffff:10.0.0.0/104", true, map[string]string{"http://10.9.9.9/": "10.9.9.9:80"}, nil},
	{"https://api.example.com", false, nil, nil},
	{"api.example.com/v1", false, nil, nil},
	{"[10.0.0.1]:80", false, nil, nil},
	{"fe80::1%eth0", false, nil, nil},
	{"api.*.com", false, nil, nil},
	{"bücher.example", false, nil, nil},
	{"a.0x1", false, nil, nil},
	{"api.example.com:0", false, nil, nil},
}

// egressAnswers is the stand-in DNS: every name has a public address (that
// of example.com, never contacted) except those named otherwise.
var egressAnswers = map[string]string{"localhost": "127.0.0.1", "private.test": "10.0.0.5", "doc.test": "203.0.113.7"}

type egressResolver struct{}

func (egressResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	a, ok := egressAnswers[host]
	if !ok {
		a = "93.184.216.34"
	}
	return []net.IPAddr{{IP: net.ParseIP(a)}}, nil
}

// errNotDialed ends a fetch the filter let through, at the dialer.
var errNotDialed = errors.New("test: not dialed")

// TestEgressGrammar runs every pattern of egressGrammar through deploy
// validation (manifest.Parse, as a deploy does) and, when the deploy
// accepts it, through fetch with the patterns the sandbox would build
// (EgressGrants.Patterns): a granted URL must reach the dialer with the
// expected address; a refused one must be denied without reaching it. The
// dialer connects to nothing: it records the address and fails the fetch,
// and fails the test when the URL should not have got that far.
func TestEgressGrammar(t *testing.T) {
	for _, tt := range egressGrammar {
		t.Run(tt.pattern, func(t *testing.T) {
			yaml := "app: diary\nfunctions:\n  save-entry:\n    source: ./f\n    grants: { egress: { hosts: ['" + tt.pattern + "'] } }\n"
			m, err := manifest.Parse("aegis.yaml", []byte(yaml))
			if !tt.deploy {
				want := `aegis.yaml:5: functions.save-entry.grants.egress.hosts[0]: invalid egress host "` + tt.pattern + `": `
				if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, aegis.ErrInvalidArgument) {
					t.Fatalf("deploy: %v, want a refusal starting %q", err, want)
				}
				// Nor could a stored version hold it: the sandbox parses
				// grants with the same function and refuses to build.
				if _, err := (manifest.EgressGrants{Hosts: []string{tt.pattern}}).Patterns(); err == nil {
					t.Fatal("deploy refuses the pattern, but it parses into a grant")
				}
				return
			}
			if err != nil {
				t.Fatalf("deploy refused: %v", err)
			}
			g := m.Functions["save-entry"].Grants
			c := caller(g) // Egress parsed as the sandbox parses it
			if len(c.Egress) != 1 {
				t.Fatalf("parsed %d patterns, want 1", len(c.Egress))
			}
			for url, want := range tt.grants {
				if got, err := egressFetch(t, c, url, true); !errors.Is(err, errNotDialed) || got != want {
					t.Errorf("fetch %s: dialed %q (%v), want %q", url, got, err, want)
				}
			}
			for _, url := range tt.refuses {
				if _, err := egressFetch(t, c, url, false); !errors.Is(err, aegis.ErrPermissionDenied) {
					t.Errorf("fetch %s: %v, want it refused", url, err)
				}
			}
		})
	}
}

// egressFetch runs one fetch on a Host whose dialer never connects and
// returns the one address it was asked for. When granted is false, being
// asked at all fails the test.
func egressFetch(t *testing.T, c *sandbox.Caller, url string, granted bool) (string, error) {
	t.Helper()
	var mu sync.Mutex
	var dialed []string
	hs := newHarness(t, func(cfg *Config) {
		cfg.Resolver = egressResolver{}
		cfg.Dial = func(_ context.Context, _, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			if !granted {
				t.Errorf("fetch %s: dial attempted to %s", url, addr)
			}
			return nil, errNotDialed
		}
	})
	_, err := hs.host.Fetch(context.Background(), c, &sandbox.FetchRequest{URL: url})
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) > 1 {
		t.Errorf("fetch %s: dialed %v, want one address", url, dialed)
	}
	if len(dialed) == 0 {
		return "", err
	}
	if errors.Is(err, aegis.ErrUnavailable) && strings.Contains(err.Error(), errNotDialed.Error()) {
		err = errNotDialed // the guest sees the failure as unavailable
	}
	return dialed[0], err
}

// TestEgressGrammarCoversDocs fails when docs/manifest.md shows an egress
// pattern that egressGrammar does not try.
func TestEgressGrammarCoversDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/manifest.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "`egress.hosts` entries are one of:")
	end := strings.Index(text, "### Limits")
	if start < 0 || end < start {
		t.Fatal("docs/manifest.md: egress.hosts section not found")
	}
	// Spans in the section that are words of the prose, not patterns.
	prose := []string{"-", "_", "0x", ":port", "*.", "fetch", "egress.hosts"}
	tried := func(p string) bool {
		return slices.ContainsFunc(egressGrammar, func(e egressCase) bool { return e.pattern == p })
	}
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(text[start:end], -1) {
		span := m[1]
		if strings.Contains(span, " ") || slices.Contains(prose, span) {
			continue // an error message or a word
		}
		if !tried(span) {
			t.Errorf("docs/manifest.md shows egress pattern %q, which TestEgressGrammar does not try", span)
		}
	}
	// And the example manifest's grant at the top of the page.
	if !strings.Contains(text, `egress: { hosts: ["hooks.slack.com:443"] }`) || !tried("hooks.slack.com:443") {
		t.Error("the example's egress grant is not in egressGrammar")
	}
}
