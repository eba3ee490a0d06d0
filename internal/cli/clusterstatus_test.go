package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
)

func TestWriteClusterStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seen := now.Add(-3 * time.Second)
	for name, tc := range map[string]struct {
		st   client.ClusterStatus
		want []string
		not  []string
	}{
		"clustered": {
			client.ClusterStatus{MetaLeader: "aegis-1", Servers: []client.ClusterServer{
				{Name: "aegis-0", Address: "http://10.0.0.5:8080", Admin: "http://10.0.0.5:8081", Version: "v1.2.3", Health: "ok", LastSeen: &seen},
				{Name: "aegis-2", Health: "unknown"},
			}},
			[]string{"NAME", "LAST SEEN", "aegis-0  http://10.0.0.5:8080", "v1.2.3", "3s ago", "aegis-2", "unknown", "JetStream meta leader: aegis-1"},
			[]string{"Incomplete"},
		},
		"alone, no quorum": {
			client.ClusterStatus{Incomplete: true, Servers: []client.ClusterServer{{Name: "aegis-0", Health: "degraded", LastSeen: &now}}},
			[]string{"degraded", "0s ago", "JetStream meta leader: none", "Incomplete: the other servers' heartbeats could not be read"},
			nil,
		},
	} {
		var b bytes.Buffer
		if err := writeClusterStatus(&b, &tc.st, now); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: no %q in\n%s", name, w, b.String())
			}
		}
		for _, w := range tc.not {
			if strings.Contains(b.String(), w) {
				t.Errorf("%s: %q in\n%s", name, w, b.String())
			}
		}
	}
}
