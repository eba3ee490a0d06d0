package capability

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestParseHostPattern(t *testing.T) {
	tests := []struct {
		in   string
		want string // String() of the parsed pattern; "" means a parse error
	}{
		{"api.example.com", "api.example.com"},
		{"API.Example.com.", "api.example.com"},
		{"api.example.com:8443", "api.example.com:8443"},
		{"*.example.com", "*.example.com"},
		{"*.example.com:443", "*.example.com:443"},
		{"*", "*"},
		{"*:443", "*:443"},
		{"10.0.0.5", "10.0.0.5"},
		{"10.0.0.5:8080", "10.0.0.5:8080"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[::1]:8080", "[::1]:8080"},
		{"::ffff:10.0.0.5", "10.0.0.5"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"fd00::/8", "fd00::/8"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"my_service.internal", "my_service.internal"},

		{"", ""},
		{"*.", ""},
		{"*.*.example.com", ""},
		{"api.*.com", ""},
		{"a*", ""},
		{"https://api.example.com", ""},
		{"api.example.com/path", ""},
		{"api.example.com:0", ""},
		{"api.example.com:65536", ""},
		{"api.example.com:", ""},
		{"api.example.com:http", ""},
		{"[api.example.com]", ""},
		{"[::1", ""},
		{"[::1]x", ""},
		{"fe80::1%eth0", ""},
		{"-bad.example.com", ""},
		{"a..b", ""},
		{"bücher.example", ""},
		{"127.1", ""},
		{"2130706433", ""},
		{"0x7f000001", ""},
		{"10.0.0.0/33", ""},
		{"user@host", ""},
		{strings.Repeat("a", 64) + ".com", ""},
	}
	for _, tt := range tests {
		p, err := parseHostPattern(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseHostPattern(%q) = %v, want an error", tt.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseHostPattern(%q): %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("parseHostPattern(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHostPatternMatches(t *testing.T) {
	name := func(h string, port uint16) target { return target{host: h, port: port} }
	ip := func(s string, port uint16) target {
		a := netip.MustParseAddr(s)
		return target{host: a.String(), addr: a.Unmap(), port: port}
	}
	tests := []struct {
		pattern string
		t       target
		want    bool
	}{
		{"api.example.com", name("api.example.com", 443), true},
		{"api.example.com", name("api.example.com", 8080), true},
		{"api.example.com", name("x.api.example.com", 443), false},
		{"api.example.com", name("api.example.com.evil.test", 443), false},
		{"api.example.com:443", name("api.example.com", 443), true},
		{"api.example.com:443", name("api.example.com", 80), false},
		{"*.example.com", name("a.example.com", 443), true},
		{"*.example.com", name("a.b.example.com", 443), true},
		{"*.example.com", name("example.com", 443), false},
		{"*.example.com", name("evilexample.com", 443), false},
		{"*.example.com", ip("93.184.216.34", 443), false},
		{"*", name("anything.test", 80), true},
		{"*", ip("93.184.216.34", 80), true},
		{"*:443", ip("93.184.216.34", 80), false},
		{"10.0.0.5", ip("10.0.0.5", 80), true},
		{"10.0.0.5", ip("::ffff:10.0.0.5", 80), true},
		{"10.0.0.5", ip("10.0.0.6", 80), false},
		{"10.0.0.5", name("10-0-0-5.test", 80), false},
		{"10.0.0.5:8080", ip("10.0.0.5", 80), false},
		{"10.0.0.0/8", ip("10.200.0.1", 80), true},
		{"10.0.0.0/8", ip("11.0.0.1", 80), false},
		{"fd00::/8", ip("fd12::1", 80), true},
		{"::1", ip("::1", 80), true},
		{"::1", ip("127.0.0.1", 80), false},
	}
	for _, tt := range tests {
		p, err := parseHostPattern(tt.pattern)
		if err != nil {
			t.Fatalf("parseHostPattern(%q): %v", tt.pattern, err)
		}
		if got := p.matches(tt.t); got != tt.want {
			t.Errorf("%q matches %+v = %v, want %v", tt.pattern, tt.t, got, tt.want)
		}
	}
}

func TestAddrClass(t *testing.T) {
	tests := []struct {
		addr   string
		public bool
	}{
		{"93.184.216.34", true},
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"64:ff9b::808:808", true}, // NAT64 of a public address
		{"2002:808:808::", true},   // 6to4 of a public address
		{"::ffff:8.8.8.8", true},
		{"172.32.0.1", true},
		{"100.128.0.1", true},

		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.0.0.1", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.0.1", false},
		{"fc00::1", false},
		{"fd00:ec2::254", false},
		{"169.254.169.254", false},
		{"169.254.0.1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"100.100.100.200", false},
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"ff02::1", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"::127.0.0.1", false},
		{"64:ff9b::7f00:1", false},
		{"64:ff9b::a9fe:a9fe", false},
		{"2002:a00:1::", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false},
		{"fec0::1", false},
	}
	for _, tt := range tests {
		c := addrClass(netip.MustParseAddr(tt.addr))
		if (c == "") != tt.public {
			t.Errorf("addrClass(%s) = %q, want public=%v", tt.addr, c, tt.public)
		}
	}
	if c := addrClass(netip.MustParseAddr("169.254.169.254")); c != "cloud metadata" {
		t.Errorf("metadata address classed %q", c)
	}
}

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

func FuzzHostPattern(f *testing.F) {
	for _, s := range []string{
		"api.example.com", "*.example.com:443", "*", "10.0.0.0/8", "[::1]:8080", "::ffff:10.0.0.1",
		"fd00::/8", "a..b", "[::1", "*.", "127.1", "fe80::1%eth0", "::ffff:10.0.0.0/104", "[1.2.3.4]:80",
	} {
		f.Add(s)
	}
	targets := []target{
		{host: "api.example.com", port: 443},
		{host: "10.0.0.1", addr: netip.MustParseAddr("10.0.0.1"), port: 80},
		{host: "::1", addr: netip.MustParseAddr("::1"), port: 8080},
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseHostPattern(s)
		if err != nil {
			return
		}
		again, err := parseHostPattern(p.String())
		if err != nil || again != p {
			t.Fatalf("%q parsed to %q, which parses to %v (%v)", s, p, again, err)
		}
		switch p.kind {
		case hostName:
			if validateHostname(p.name) != nil {
				t.Fatalf("%q: name pattern %q is not a valid host name", s, p.name)
			}
		case hostSuffix:
			if validateHostname(strings.TrimPrefix(p.name, ".")) != nil || !strings.HasPrefix(p.name, ".") {
				t.Fatalf("%q: suffix pattern %q is malformed", s, p.name)
			}
		case hostAddr:
			if p.addr.Is4In6() || p.addr.Zone() != "" {
				t.Fatalf("%q: address %s not canonical", s, p.addr)
			}
		}
		for _, tg := range targets {
			p.matches(tg)
		}
	})
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
		} else if err := validateHostname(tg.host); err != nil {
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
