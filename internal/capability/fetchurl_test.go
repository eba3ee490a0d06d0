package capability

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/aegis-platform/aegis/manifest"
)

func TestParseFetchURL(t *testing.T) {
	tests := []struct {
		in, url, host string
		port          uint16
	}{
		{"https://api.example.com/v1?q=1", "https://api.example.com/v1?q=1", "api.example.com", 443},
		{"HTTP://API.Example.COM./x#frag", "http://api.example.com/x", "api.example.com", 80},
		{"http://api.example.com:080/", "http://api.example.com:80/", "api.example.com", 80},
		{"http://10.0.0.1:8080", "http://10.0.0.1:8080", "10.0.0.1", 8080},
		{"http://[::FFFF:10.0.0.1]/", "http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", 80},
		{"https://[2606:4700::1]:8443/", "https://[2606:4700::1]:8443/", "2606:4700::1", 8443},
	}
	for _, tt := range tests {
		u, tg, err := parseFetchURL(tt.in)
		if err != nil {
			t.Errorf("parseFetchURL(%q): %v", tt.in, err)
			continue
		}
		if u.String() != tt.url || tg.host != tt.host || tg.port != tt.port {
			t.Errorf("parseFetchURL(%q) = %q %+v, want %q %s:%d", tt.in, u, tg, tt.url, tt.host, tt.port)
		}
	}
}

func FuzzFetchURL(f *testing.F) {
	for _, s := range []string{
		"https://api.example.com/v1?q=1", "http://10.0.0.1:8080", "http://[::ffff:10.0.0.1]/",
		"http://user@host/", "http://[fe80::1%25eth0]/", "ftp://x/", "http:opaque", "http://2130706433/",
		"HTTP://API.Example.COM./x#frag", "http://a:080/", "http://[::1]:/", "http://%41.example/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, tg, err := parseFetchURL(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Fragment != "" {
			t.Fatalf("%q accepted as %q", raw, u)
		}
		if tg.port == 0 || tg.host == "" {
			t.Fatalf("%q: empty target %+v", raw, tg)
		}
		if tg.addr.IsValid() {
			if a, err := netip.ParseAddr(tg.host); err != nil || a.Unmap() != tg.addr || tg.addr.Is4In6() {
				t.Fatalf("%q: literal target %+v inconsistent", raw, tg)
			}
		} else if err := manifest.CheckHostName(tg.host); err != nil {
			t.Fatalf("%q: host %q accepted: %v", raw, tg.host, err)
		}
		// The transport dials by the canonical URL's host: it must be the target.
		if u.Hostname() != tg.host {
			t.Fatalf("%q: URL host %q differs from target %q", raw, u.Hostname(), tg.host)
		}
		// Canonical form is a fixed point.
		u2, tg2, err := parseFetchURL(u.String())
		if err != nil || u2.String() != u.String() || tg2 != tg {
			t.Fatalf("%q: canonical %q reparses to %q %+v (%v)", raw, u, u2, tg2, err)
		}
		if _, err := url.Parse(u.String()); err != nil {
			t.Fatalf("%q: canonical form does not parse: %v", raw, err)
		}
	})
}
