package manifest

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxHostPattern bounds an egress.hosts entry: the longest host name (253)
// with "*." and ":65535" fits, as does any IPv6 CIDR in brackets with a
// port.
const maxHostPattern = 300

const hostRule = "use a host name (api.example.com), *.domain, an IP address or a CIDR, optionally with :port"

// hostKind is the shape of an egress pattern.
type hostKind uint8

const (
	hostName   hostKind = iota + 1 // "api.example.com"
	hostSuffix                     // "*.example.com": every subdomain, not the domain itself
	hostAddr                       // "203.0.113.7", "2001:db8::1"
	hostCIDR                       // "10.0.0.0/8", "2001:db8::/32"
)

// HostPattern is one parsed entry of egress.hosts. ParseHostPattern is the
// only grammar there is: deploy refuses what it refuses, and fetch decides
// with Match and NamesAddr on what it returns, so a grant can never mean one
// thing at deploy and another at run time. The zero value matches nothing.
type HostPattern struct {
	kind   hostKind
	name   string       // hostName: "api.example.com"; hostSuffix: ".example.com"
	prefix netip.Prefix // hostAddr: the address as a single-address prefix; hostCIDR: the network
	port   uint16       // 0: any port
}

// ParseHostPattern parses an egress.hosts entry as docs/manifest.md
// describes it:
//
//   - a host name, "api.example.com", or "*.example.com" for every
//     subdomain of one: labels of ASCII letters, digits, '-' and '_', in any
//     case (compared in lower case), no trailing dot, and a last label that
//     is neither all digits nor "0x…", which resolvers read as IPv4;
//   - an IP address, "203.0.113.7" or "2001:db8::1" (no zone);
//   - a CIDR with no host bits set, "10.0.0.0/8";
//
// each optionally followed by ":port", with IPv6 in brackets then
// ("[2001:db8::1]:443", "[2001:db8::/32]:443"). IPv4-mapped IPv6 forms are
// reduced to IPv4, so one address has one spelling. "*" alone is refused:
// it would grant every host. The error names s.
func ParseHostPattern(s string) (HostPattern, error) {
	p, err := parseHostPattern(s)
	if err != nil {
		return HostPattern{}, fmt.Errorf("invalid egress host %q: %w", s, err)
	}
	return p, nil
}

func parseHostPattern(s string) (HostPattern, error) {
	switch {
	case s == "":
		return HostPattern{}, errors.New("host is empty")
	case len(s) > maxHostPattern:
		return HostPattern{}, fmt.Errorf("longer than %d bytes", maxHostPattern)
	case strings.Contains(s, "://"):
		return HostPattern{}, errors.New("give a host, not a URL")
	}
	host, portStr, hasPort, bracketed, err := splitHostPort(s)
	if err != nil {
		return HostPattern{}, err
	}
	var port uint16
	if hasPort {
		if port, err = parsePort(portStr); err != nil {
			return HostPattern{}, err
		}
	}
	if bracketed && !strings.Contains(host, ":") {
		return HostPattern{}, errors.New("brackets are only for IPv6 addresses")
	}
	if strings.Contains(host, "/") {
		pfx, err := parseCIDR(host)
		if err != nil {
			return HostPattern{}, err
		}
		return HostPattern{kind: hostCIDR, prefix: pfx, port: port}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return HostPattern{}, errors.New("IPv6 zones are not supported")
		}
		a = a.Unmap()
		return HostPattern{kind: hostAddr, prefix: netip.PrefixFrom(a, a.BitLen()), port: port}, nil
	}
	if bracketed || strings.Contains(host, ":") {
		return HostPattern{}, errors.New("not a valid IP address")
	}
	return parseHostName(host, port)
}

// splitHostPort splits "host:port" and "[v6]:port"; the port is optional
// (hasPort tells "host:" from "host"). An unbracketed host with more than
// one ':' is IPv6 without a port: "::1:80" is an address.
func splitHostPort(s string) (host, port string, hasPort, bracketed bool, err error) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, after, ok := strings.Cut(rest, "]")
		switch {
		case !ok:
			return "", "", false, true, errors.New("missing \"]\"")
		case after == "":
			return host, "", false, true, nil
		}
		port, ok := strings.CutPrefix(after, ":")
		if !ok {
			return "", "", false, true, errors.New("unexpected text after \"]\"")
		}
		return host, port, true, true, nil
	}
	if strings.Count(s, ":") == 1 {
		host, port, _ = strings.Cut(s, ":")
		return host, port, true, false, nil
	}
	return s, "", false, false, nil
}

// parsePort accepts 1-65535 written in plain decimal: no sign, no leading
// zero, so every port has one spelling.
func parsePort(p string) (uint16, error) {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || p[0] == '0' {
		return 0, fmt.Errorf("invalid port %q (use 1-65535)", p)
	}
	return uint16(n), nil
}

// parseCIDR accepts a network in canonical form: a prefix with host bits
// set ("10.0.0.5/8") is refused rather than rounded down, since whoever
// wrote it may have meant the single address.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if addr, _, _ := strings.Cut(s, "/"); !isIPLiteral(addr) {
			return netip.Prefix{}, errors.New("give a host, not a URL or a path")
		}
		return netip.Prefix{}, errors.New("not a valid CIDR")
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("CIDR has host bits set (did you mean %s?)", p.Masked())
	}
	// "::ffff:10.0.0.0/104" is 10.0.0.0/8: fetch compares unmapped addresses.
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Bits() == 0 {
		// Like "*": every address of the family, the private networks and
		// the cloud metadata address included, which fetch otherwise
		// refuses to everyone.
		return netip.Prefix{}, fmt.Errorf("%s would grant every address; name the networks the function needs", p)
	}
	return p, nil
}

// isIPLiteral reports whether s is an IP address, zone or not.
func isIPLiteral(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// parseHostName parses "api.example.com" or "*.example.com".
func parseHostName(host string, port uint16) (HostPattern, error) {
	kind := hostName
	name := host
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		kind, name = hostSuffix, rest
	}
	switch {
	case host == "*":
		return HostPattern{}, errors.New(hostRule + ` ("*" alone would grant every host)`)
	case strings.Contains(name, "*"):
		return HostPattern{}, errors.New(hostRule + ` ("*" only as a leading "*.")`)
	case strings.HasSuffix(name, ".") && strings.TrimRight(name, ".") != "":
		return HostPattern{}, fmt.Errorf("remove the trailing dot (write %s)", strings.TrimRight(host, "."))
	}
	name = toLowerASCII(name)
	switch err := CheckHostName(name); {
	case errors.Is(err, errHostName):
		return HostPattern{}, errors.New(hostRule)
	case err != nil:
		return HostPattern{}, err
	}
	if kind == hostSuffix {
		name = "." + name
	}
	return HostPattern{kind: kind, name: name, port: port}, nil
}

// errHostName is CheckHostName's answer to a name that breaks the label
// rules; a grant reports it as hostRule, a URL as it is.
var errHostName = errors.New("not a host name: use labels of letters, digits, '-' and '_'")

// CheckHostName reports whether name is a host name as egress grants and
// fetch URLs spell it: lower-case ASCII labels of 1-63 letters, digits, '-'
// and '_' (not starting or ending with '-'), at most 253 bytes, without a
// trailing dot. A last label that is all digits or starts with "0x" is
// refused: URL parsers and getaddrinfo read "127.1" or "0x7f.1" as IPv4
// addresses, the classic way to pass one off as a name.
func CheckHostName(name string) error {
	if name == "" || len(name) > 253 {
		return errHostName
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !validLabel(l) {
			if !isASCII(l) {
				return errors.New("write international host names in punycode (xn--…)")
			}
			return errHostName
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return errors.New("the last label of a host name cannot be a number")
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Match reports whether the pattern grants a request to host on port. host
// is what fetch checked: a host name (compared in lower case; one trailing
// dot ignored) or an IP address literal. Name patterns never match an
// address and address patterns never match a name: "*.example.com" does not
// grant a URL spelled with one of its addresses, and "10.0.0.5" does not
// grant a name that resolves to it.
func (p HostPattern) Match(host string, port uint16) bool {
	if p.port != 0 && p.port != port {
		return false
	}
	switch p.kind {
	case hostName, hostSuffix:
		host = strings.TrimSuffix(host, ".")
		if strings.Contains(host, ":") {
			return false // an IPv6 literal; a name never has ':'
		}
		if p.kind == hostName {
			return equalFoldASCII(host, p.name)
		}
		return len(host) > len(p.name) && equalFoldASCII(host[len(host)-len(p.name):], p.name)
	case hostAddr, hostCIDR:
		a, err := netip.ParseAddr(host)
		return err == nil && p.NamesAddr(a, port)
	}
	return false
}

// NamesAddr reports whether the pattern names the address a on port: an IP
// pattern equal to it or a CIDR containing it. Only such a grant lets fetch
// reach a loopback, private, link-local or metadata address; a host name
// that resolves to one is not enough.
func (p HostPattern) NamesAddr(a netip.Addr, port uint16) bool {
	if p.port != 0 && p.port != port {
		return false
	}
	if p.kind != hostAddr && p.kind != hostCIDR || a.Zone() != "" {
		return false
	}
	return p.prefix.Contains(a.Unmap())
}

// String formats the pattern so that parsing it again gives the same value:
// lower case, IPv4-mapped addresses unmapped, IPv6 in brackets before a port.
func (p HostPattern) String() string {
	var host string
	switch p.kind {
	case hostName:
		host = p.name
	case hostSuffix:
		host = "*" + p.name
	case hostAddr:
		host = p.prefix.Addr().String()
	case hostCIDR:
		host = p.prefix.String()
	default:
		return ""
	}
	if p.port == 0 {
		return host
	}
	if (p.kind == hostAddr || p.kind == hostCIDR) && p.prefix.Addr().Is6() {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(p.port))
}

// equalFoldASCII compares ASCII case-insensitively. strings.EqualFold would
// also fold Unicode (the Kelvin sign 'K' matches 'k'), letting a name that
// was never granted pass as one that was.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
