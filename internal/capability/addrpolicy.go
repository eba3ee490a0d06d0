package capability

import "net/netip"

// Addresses fetch refuses unless a grant names them explicitly. The list is
// the usual SSRF deny list: anything that is not a routable public unicast
// address, because each of these reaches the host itself, its network, or
// a cloud provider's metadata service (which hands out credentials).
var (
	metadataAddrs = map[netip.Addr]bool{
		netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OpenStack
		netip.MustParseAddr("fd00:ec2::254"):   true, // AWS IPv6
		netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	}

	blockedPrefixes = []struct {
		prefix netip.Prefix
		kind   string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"}, // "this network"; 0.0.0.0 reaches localhost
		{netip.MustParsePrefix("10.0.0.0/8"), "private"},
		{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private"},
		{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
		{netip.MustParsePrefix("192.88.99.0/24"), "reserved"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes 255.255.255.255 broadcast

		{netip.MustParsePrefix("::1/128"), "loopback"},
		{netip.MustParsePrefix("::/96"), "unspecified or IPv4-compatible"}, // "::" and deprecated ::a.b.c.d
		{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
		{netip.MustParsePrefix("100::/64"), "discard"},
		{netip.MustParsePrefix("2001::/32"), "Teredo"}, // tunnels to an obfuscated IPv4 address
		{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
		{netip.MustParsePrefix("fc00::/7"), "private"},
		{netip.MustParsePrefix("fe80::/10"), "link-local"},
		{netip.MustParsePrefix("fec0::/10"), "site-local"},
		{netip.MustParsePrefix("ff00::/8"), "multicast"},
	}

	// IPv6 ranges that embed an IPv4 address which a gateway may reach for
	// us: the embedded address must pass the same checks.
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: last 32 bits
	sixToFourPfx = netip.MustParsePrefix("2002::/16")    // RFC 3056: bits 16..47
)

// addrClass returns "" for a public unicast address and otherwise a short
// description of why fetch must not reach it without an explicit grant.
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
func addrClass(a netip.Addr) string {
	a = a.WithZone("").Unmap() // Prefix.Contains is false for zoned addresses
	if !a.IsValid() {
		return "invalid"
	}
	if metadataAddrs[a] {
		return "cloud metadata"
	}
	for _, b := range blockedPrefixes {
		if b.prefix.Contains(a) {
			return b.kind
		}
	}
	if a.Is6() {
		b := a.As16()
		if nat64Prefix.Contains(a) {
			if c := addrClass(netip.AddrFrom4([4]byte(b[12:16]))); c != "" {
				return "NAT64 " + c
			}
		}
		if sixToFourPfx.Contains(a) {
			if c := addrClass(netip.AddrFrom4([4]byte(b[2:6]))); c != "" {
				return "6to4 " + c
			}
		}
	}
	return ""
}
