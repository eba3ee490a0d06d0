package guard

import (
	"fmt"
	"net/netip"
	"strings"
)

// Proxies are the peers trusted to say who their client is in
// X-Forwarded-For (`aegis server --trusted-proxy CIDR`). Empty, the
// default, trusts nobody: the address is the connection's.
type Proxies []netip.Prefix

// ParseProxies reads CIDRs ("10.0.0.0/8") or single addresses
// ("10.0.0.1").
func ParseProxies(cidrs []string) (Proxies, error) {
	out := make(Proxies, 0, len(cidrs))
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not a CIDR or an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddress is the address the guard counts and blocks (Address: an
// IPv4 address or an IPv6 /64) for a request from remote (its RemoteAddr)
// carrying the X-Forwarded-For values xff.
// Only when the connection comes from a trusted proxy is the header read,
// from the right: each entry was appended by the hop to its right, so the
// first one that is not itself a trusted proxy is the client. Entries left
// of it were written by the client and are never believed. An entry that
// is not an address ends the walk at the last hop believed.
func (p Proxies) ClientAddress(remote string, xff []string) string {
	return Address(p.clientHost(remote, xff))
}

func (p Proxies) clientHost(remote string, xff []string) string {
	peer := AddressOf(remote)
	if len(p) == 0 || len(xff) == 0 {
		return peer
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || !p.trusts(a) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		entries := strings.Split(xff[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, ok := parseHop(strings.TrimSpace(entries[j]))
			if !ok {
				return client
			}
			client = a.String()
			if !p.trusts(a) {
				return client
			}
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For entry: an address, or an address
// and port as some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
