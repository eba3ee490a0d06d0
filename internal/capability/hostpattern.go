package capability

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// hostKind is the shape of an egress grant pattern.
type hostKind uint8

const (
	hostAny    hostKind = iota + 1 // "*": any host (public addresses only)
	hostName                       // "api.example.com"
	hostSuffix                     // "*.example.com": sub-domains only
	hostAddr                       // "10.0.0.5", "[::1]"
	hostPrefix                     // "10.0.0.0/8", "fd00::/8"
)

// hostPattern is one parsed entry of grants.Egress.Hosts.
type hostPattern struct {
	kind   hostKind
	name   string // hostName: the host; hostSuffix: ".example.com"
	addr   netip.Addr
	prefix netip.Prefix
	port   uint16 // 0: any port
}

// target is where one outbound request goes, in canonical form.
type target struct {
	host string     // lower case, no trailing dot; an IP literal without brackets
	addr netip.Addr // valid when host is an IP literal, unmapped
	port uint16     // explicit or the scheme's default
}

// parseHostPattern parses an egress grant. Accepted forms, each with an
// optional ":port" except CIDRs: "*", "api.example.com", "*.example.com",
// "10.0.0.5", "[::1]" (or bare "::1"), "10.0.0.0/8", "fd00::/8".
// IPv4-mapped IPv6 forms are reduced to IPv4 so that one address has one
// spelling when patterns and addresses are compared.
func parseHostPattern(s string) (hostPattern, error) {
	if s == "" || len(s) > 300 {
		return hostPattern{}, errors.New("host pattern must be 1 to 300 characters")
	}
	s = strings.ToLower(s)
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return hostPattern{}, errors.New("not a valid CIDR")
		}
		return hostPattern{kind: hostPrefix, prefix: unmapPrefix(pfx).Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil { // bare IPv4 or IPv6, no port
		if a.Zone() != "" {
			return hostPattern{}, errors.New("IPv6 zones are not allowed")
		}
		return hostPattern{kind: hostAddr, addr: a.Unmap()}, nil
	}
	host, port, err := splitPatternPort(s)
	if err != nil {
		return hostPattern{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return hostPattern{}, errors.New("IPv6 zones are not allowed")
		}
		return hostPattern{kind: hostAddr, addr: a.Unmap(), port: port}, nil
	}
	if strings.HasPrefix(s, "[") {
		return hostPattern{}, errors.New("brackets must hold an IPv6 address")
	}
	if host == "*" {
		return hostPattern{kind: hostAny, port: port}, nil
	}
	host = strings.TrimSuffix(host, ".") // "example.com." is "example.com"
	if domain, ok := strings.CutPrefix(host, "*."); ok {
		if err := validateHostname(domain); err != nil {
			return hostPattern{}, err
		}
		return hostPattern{kind: hostSuffix, name: "." + domain, port: port}, nil
	}
	if err := validateHostname(host); err != nil {
		return hostPattern{}, err
	}
	return hostPattern{kind: hostName, name: host, port: port}, nil
}

// splitPatternPort splits "host:port" or "[v6]:port"; the port is optional.
func splitPatternPort(s string) (string, uint16, error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("missing ']'")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, 0, nil
		}
		p, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return "", 0, errors.New("unexpected text after ']'")
		}
		port, err := parsePort(p)
		return host, port, err
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0, nil
	}
	port, err := parsePort(s[i+1:])
	return s[:i], port, err
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q must be a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// unmapPrefix turns "::ffff:10.0.0.0/104" into "10.0.0.0/8".
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// validateHostname accepts lower-case ASCII DNS names: labels of 1 to 63
// letters, digits, '-' or '_' (not starting or ending with '-'), 253 bytes
// in all. A name whose last label is numeric or hex ("10.0.0", "0x7f") is
// refused: URL parsers and getaddrinfo read those as IPv4 addresses, the
// classic way to smuggle "127.0.0.1" past a host name check.
func validateHostname(host string) error {
	if host == "" || len(host) > 253 {
		return errors.New("host name must be 1 to 253 characters")
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("host name %q has an empty or over-long label", host)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host name %q has a label starting or ending with '-'", host)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name %q must be lower-case ASCII (use punycode for IDNs)", host)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("host name %q looks like an IPv4 address", host)
	}
	return nil
}

// matches reports whether the pattern grants the target host and port.
// Name patterns never match IP literals and address patterns never match
// names: "*.example.com" does not grant a URL spelled with its IP.
func (p hostPattern) matches(t target) bool {
	if p.port != 0 && p.port != t.port {
		return false
	}
	switch p.kind {
	case hostAny:
		return true
	case hostName:
		return !t.addr.IsValid() && t.host == p.name
	case hostSuffix:
		return !t.addr.IsValid() && len(t.host) > len(p.name) && strings.HasSuffix(t.host, p.name)
	default:
		return t.addr.IsValid() && p.names(t.addr, t.port)
	}
}

// names reports whether the pattern names the address explicitly: an IP
// literal equal to it or a CIDR containing it. Only such a grant lets fetch
// reach a loopback, private, link-local or metadata address.
func (p hostPattern) names(a netip.Addr, port uint16) bool {
	if p.port != 0 && p.port != port {
		return false
	}
	switch p.kind {
	case hostAddr:
		return p.addr == a
	case hostPrefix:
		return p.prefix.Contains(a)
	}
	return false
}

// String formats the pattern so that parsing it again gives the same value.
func (p hostPattern) String() string {
	var host string
	switch p.kind {
	case hostAny:
		host = "*"
	case hostName:
		host = p.name
	case hostSuffix:
		host = "*" + p.name
	case hostAddr:
		host = p.addr.String()
		if p.addr.Is6() && p.port != 0 {
			host = "[" + host + "]"
		}
	case hostPrefix:
		return p.prefix.String()
	}
	if p.port != 0 {
		host += ":" + strconv.Itoa(int(p.port))
	}
	return host
}
