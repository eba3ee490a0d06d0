package capability

import (
	"net/netip"
	"testing"
)

// TestAddrClass checks the classifier alone: it is a pure function of an
// address and nothing here dials. The filter it feeds is tested through
// injected dialers that fail the test instead of connecting (fetch_test.go,
// egress_grammar_test.go), checked by testkit/netguard.
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
