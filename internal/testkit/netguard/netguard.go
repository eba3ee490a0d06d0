// Package netguard is the last check of the test dialers that stand in for
// fetch's network: whatever a test allows, only a loopback address is ever
// dialed, so a broken egress filter (or a careless test) cannot send a
// packet off this machine.
package netguard

import "net/netip"

// Loopback reports whether addr ("host:port", host an IP literal) is on
// the loopback interface. Names are not resolved: a test dialer is handed
// addresses, and a name would be a bug worth refusing.
func Loopback(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
