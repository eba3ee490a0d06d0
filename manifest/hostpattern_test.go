package manifest

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseHostPattern(t *testing.T) {
	tests := []struct {
		in   string
		want string // String() of the parsed pattern, or with "!" a part of the error
	}{
		{"api.example.com", "api.example.com"},
		{"API.Example.com", "api.example.com"},
		{"api.example.com:8443", "api.example.com:8443"},
		{"*.example.com", "*.example.com"},
		{"*.Example.COM:443", "*.example.com:443"},
		{"my_service.internal", "my_service.internal"},
		{"localhost", "localhost"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"203.0.113.7", "203.0.113.7"},
		{"10.0.0.5:8080", "10.0.0.5:8080"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "[2001:db8::1]:443"},
		{"::1:80", "::1:80"}, // an address: unbracketed IPv6 has no port
		{"::ffff:10.0.0.5", "10.0.0.5"},
		{"[::ffff:10.0.0.5]:80", "10.0.0.5:80"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.0.0.0/8:443", "10.0.0.0/8:443"},
		{"10.0.0.5/32", "10.0.0.5/32"},
		{"0.0.0.1/1", "!CIDR has host bits set (did you mean 0.0.0.0/1?)"},
		{"0.0.0.0/0", "!0.0.0.0/0 would grant every address"},
		{"::/0", "!::/0 would grant every address"},
		{"[::/0]:443", "!::/0 would grant every address"},
		{"::ffff:0.0.0.0/96", "!0.0.0.0/0 would grant every address"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"[2001:db8::/32]:443", "[2001:db8::/32]:443"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},

		{"", "!host is empty"},
		{"*", `!"*" alone would grant every host`},
		{"*:443", `!"*" alone would grant every host`},
		{"*.", "!use a host name"},
		{"*.*.example.com", `!"*" only as a leading "*."`},
		{"api.*.com", `!"*" only as a leading "*."`},
		{"a*", `!"*" only as a leading "*."`},
		{"example.com.", "!remove the trailing dot (write example.com)"},
		{"*.example.com.:443", "!remove the trailing dot (write *.example.com)"},
		{".", "!use a host name"},
		{"10.0.0.5/8", "!CIDR has host bits set (did you mean 10.0.0.0/8?)"},
		{"10.1.2.3/8:443", "!CIDR has host bits set (did you mean 10.0.0.0/8?)"},
		{"10.0.0.0/33", "!not a valid CIDR"},
		{"fd00::/8:443", "!not a valid CIDR"},
		{"https://api.example.com", "!give a host, not a URL"},
		{"api.example.com/path", "!give a host, not a URL or a path"},
		{"api.example.com:0", `!invalid port "0"`},
		{"api.example.com:65536", `!invalid port "65536"`},
		{"api.example.com:", `!invalid port ""`},
		{"api.example.com:0443", `!invalid port "0443"`},
		{"api.example.com:+443", `!invalid port "+443"`},
		{"api.example.com:http", `!invalid port "http"`},
		{"[api.example.com]", "!brackets are only for IPv6 addresses"},
		{"[10.0.0.1]:80", "!brackets are only for IPv6 addresses"},
		{"[::1", `!missing "]"`},
		{"[::1]x", `!unexpected text after "]"`},
		{"[::1]:80:80", `!invalid port "80:80"`},
		{"[::g]", "!not a valid IP address"},
		{"fe80::1%eth0", "!IPv6 zones are not supported"},
		{"[fe80::1%eth0]:80", "!IPv6 zones are not supported"},
		{"-bad.example.com", "!use a host name"},
		{"a..b", "!use a host name"},
		{"bücher.example", "!punycode"},
		{"user@host", "!use a host name"},
		{"127.1", "!the last label of a host name cannot be a number"},
		{"0177.0.0.1", "!the last label of a host name cannot be a number"},
		{"2130706433", "!the last label of a host name cannot be a number"},
		{"0x7f.0x1", "!the last label of a host name cannot be a number"},
		{"*.10", "!the last label of a host name cannot be a number"},
		{strings.Repeat("a", 64) + ".com", "!use a host name"},
		{strings.Repeat("a.", 127) + "com", "!use a host name"}, // 257 bytes
		{strings.Repeat("a", 301), "!longer than 300 bytes"},
	}
	for _, tt := range tests {
		p, err := ParseHostPattern(tt.in)
		if want, ok := strings.CutPrefix(tt.want, "!"); ok {
			switch {
			case err == nil:
				t.Errorf("ParseHostPattern(%q) = %v, want an error containing %q", tt.in, p, want)
			case !strings.Contains(err.Error(), want):
				t.Errorf("ParseHostPattern(%q): %v, want %q", tt.in, err, want)
			case !strings.HasPrefix(err.Error(), `invalid egress host "`+tt.in+`": `) && len(tt.in) <= maxHostPattern:
				t.Errorf("ParseHostPattern(%q): error %q does not name the pattern", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHostPattern(%q): %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("ParseHostPattern(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHostPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		host    string
		port    uint16
		want    bool
	}{
		{"api.example.com", "api.example.com", 443, true},
		{"api.example.com", "api.example.com", 8080, true},
		{"api.example.com", "API.Example.com.", 443, true},
		{"api.example.com", "x.api.example.com", 443, false},
		{"api.example.com", "api.example.com.evil.test", 443, false},
		{"api.example.com", "\u212Api.example.com", 443, false}, // Kelvin sign: no Unicode folding
		{"api.example.com:443", "api.example.com", 443, true},
		{"api.example.com:443", "api.example.com", 80, false},
		{"*.example.com", "a.example.com", 443, true},
		{"*.example.com", "a.b.Example.com", 443, true},
		{"*.example.com", "example.com", 443, false},
		{"*.example.com", "evilexample.com", 443, false},
		{"*.example.com", "93.184.216.34", 443, false},
		{"*.example.com:8443", "a.example.com", 443, false},
		{"localhost", "127.0.0.1", 80, false},
		{"10.0.0.5", "10.0.0.5", 80, true},
		{"10.0.0.5", "::ffff:10.0.0.5", 80, true},
		{"10.0.0.5", "10.0.0.6", 80, false},
		{"10.0.0.5", "10-0-0-5.test", 80, false},
		{"10.0.0.5:8080", "10.0.0.5", 80, false},
		{"10.0.0.0/8", "10.200.0.1", 80, true},
		{"10.0.0.0/8", "11.0.0.1", 80, false},
		{"10.0.0.0/8:443", "10.200.0.1", 443, true},
		{"10.0.0.0/8:443", "10.200.0.1", 80, false},
		{"::ffff:10.0.0.0/104", "10.1.2.3", 80, true},
		{"2001:db8::/32", "2001:db8:1::1", 80, true},
		{"[2001:db8::/32]:443", "2001:db8:1::1", 80, false},
		{"::1", "::1", 80, true},
		{"::1", "127.0.0.1", 80, false},
		{"fe80::1", "fe80::1%eth0", 80, false},
	}
	for _, tt := range tests {
		p, err := ParseHostPattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tt.host, tt.port); got != tt.want {
			t.Errorf("%q.Match(%q, %d) = %v, want %v", tt.pattern, tt.host, tt.port, got, tt.want)
		}
	}
	if (HostPattern{}).Match("api.example.com", 443) || (HostPattern{}).NamesAddr(netip.MustParseAddr("10.0.0.1"), 80) {
		t.Error("the zero HostPattern matched")
	}
}

// TestHostPatternNamesAddr: only an IP or CIDR pattern names an address,
// which is what lets fetch reach an internal one.
func TestHostPatternNamesAddr(t *testing.T) {
	tests := []struct {
		pattern, addr string
		port          uint16
		want          bool
	}{
		{"127.0.0.1", "127.0.0.1", 80, true},
		{"127.0.0.1", "::ffff:127.0.0.1", 80, true},
		{"127.0.0.0/8", "127.9.9.9", 80, true},
		{"127.0.0.1:8080", "127.0.0.1", 80, false},
		{"localhost", "127.0.0.1", 80, false},
		{"*.example.com", "10.0.0.1", 80, false},
		{"10.0.0.0/24", "10.0.1.1", 80, false},
		{"fe80::/10", "fe80::1%eth0", 80, false},
	}
	for _, tt := range tests {
		p, err := ParseHostPattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.NamesAddr(netip.MustParseAddr(tt.addr), tt.port); got != tt.want {
			t.Errorf("%q.NamesAddr(%s, %d) = %v, want %v", tt.pattern, tt.addr, tt.port, got, tt.want)
		}
	}
}

func TestEgressPatterns(t *testing.T) {
	ps, err := EgressGrants{Hosts: []string{"api.example.com", "10.0.0.0/8:443"}}.Patterns()
	if err != nil || len(ps) != 2 || ps[1].String() != "10.0.0.0/8:443" {
		t.Fatalf("Patterns() = %v, %v", ps, err)
	}
	if ps, err := (EgressGrants{}).Patterns(); ps != nil || err != nil {
		t.Fatalf("no hosts: %v, %v", ps, err)
	}
	_, err = EgressGrants{Hosts: []string{"api.example.com", "example.com."}}.Patterns()
	if err == nil || !strings.Contains(err.Error(), `"example.com."`) {
		t.Fatalf("Patterns() error %v does not name the bad entry", err)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything", true},
		{"*", "", true},
		{"entries", "entries", true},
		{"entries", "entries2", false},
		{"entries", "entrie", false},
		{"ent*", "entries", true},
		{"ent*", "ent", true},
		{"ent*", "en", false},
		{"images/*", "images/a.png", true},
		{"images/*", "images", false},
		{"images/*", "thumbs/a.png", false},
		{"image.*", "image.saved", true},
		{"image.*", "imagesaved", false},
		{"a*b", "a*b", true}, // only a trailing '*' is special
		{"a*b", "axb", false},
		{"", "", false},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// FuzzHostPattern feeds arbitrary text to the egress pattern parser, which
// reads it from manifests. It must not panic; what it accepts must print
// to a canonical form that parses back to the same pattern, match what it
// says it grants, and be accepted by manifest validation exactly when the
// parser accepts it. The seed corpus is testdata/fuzz/FuzzHostPattern.
func FuzzHostPattern(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseHostPattern(s)
		m := &Manifest{App: "a", Functions: map[string]*Function{"f": {Source: "f", Grants: Grants{Egress: EgressGrants{Hosts: []string{s}}}}}}
		if verr := m.Validate(); (verr == nil) != (err == nil) {
			t.Fatalf("%q: parser says %v, validation says %v", s, err, verr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid egress host ") {
				t.Fatalf("%q: error %q does not name the pattern", s, err)
			}
			return
		}
		c := p.String()
		again, err := ParseHostPattern(c)
		if err != nil || again != p {
			t.Fatalf("%q parsed to %q, which parses to %v (%v)", s, c, again, err)
		}
		if c != toLowerASCII(c) {
			t.Fatalf("%q: canonical form %q is not lower case", s, c)
		}
		port := p.port
		if port == 0 {
			port = 443
		}
		var granted string // a host the pattern grants
		switch p.kind {
		case hostName:
			granted = p.name
			if CheckHostName(p.name) != nil || !p.Match(p.name, port) || !p.Match(strings.ToUpper(p.name)+".", port) {
				t.Fatalf("%q: name pattern %q does not grant its own name", s, p.name)
			}
			if p.Match("x."+p.name, port) {
				t.Fatalf("%q: name pattern grants a subdomain", s)
			}
		case hostSuffix:
			granted = "x" + p.name
			apex := strings.TrimPrefix(p.name, ".")
			if CheckHostName(apex) != nil || !p.Match(granted, port) || p.Match(apex, port) {
				t.Fatalf("%q: suffix pattern %q is malformed", s, p.name)
			}
		case hostAddr, hostCIDR:
			a := p.prefix.Addr()
			granted = a.String()
			if a.Is4In6() || a.Zone() != "" || p.prefix != p.prefix.Masked() {
				t.Fatalf("%q: prefix %s not canonical", s, p.prefix)
			}
			if !p.Match(granted, port) || !p.NamesAddr(a, port) || p.Match("x.example", port) {
				t.Fatalf("%q: address pattern does not grant %s alone", s, a)
			}
		default:
			t.Fatalf("%q: parsed to kind %d", s, p.kind)
		}
		if p.port != 0 && p.Match(granted, p.port%65535+1) {
			t.Fatalf("%q: matched %s on another port", s, granted)
		}
	})
}
