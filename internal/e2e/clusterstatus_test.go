package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/server"
)

// clusterStatus runs `aegis cluster status ARGS` against in's admin API
// and returns its output.
func clusterStatus(t *testing.T, in *instance, args ...string) string {
	t.Helper()
	env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken()}
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"cluster", "status"}, args...), strings.NewReader(""), &out, &errb,
		func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("aegis cluster status %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// statusJSON is `aegis cluster status -o json` decoded loosely, so that a
// field missing from the output is seen as missing.
type statusJSON struct {
	Servers    []map[string]any `json:"servers"`
	MetaLeader *string          `json:"meta_leader"`
}

func clusterStatusJSON(t *testing.T, in *instance) statusJSON {
	t.Helper()
	out := clusterStatus(t, in, "-o", "json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.MetaLeader == nil {
		t.Fatalf("aegis cluster status -o json: %v (meta_leader %v)\n%s", err, st.MetaLeader, out)
	}
	return st
}

func serverNames(st statusJSON) []string {
	var names []string
	for _, s := range st.Servers {
		name, _ := s["name"].(string)
		names = append(names, name)
	}
	return names
}

// TestClusterStatus: two servers sharing one NATS each list both, by node
// name, with where their gateway and admin API answer, their version and
// health; a server killed (its heartbeat left behind) leaves the list
// within the heartbeat's TTL, and one stopped cleanly at once.
func TestClusterStatus(t *testing.T) {
	first := startServerWith(t, t.TempDir(), func(c *server.Config) { c.NodeName = "status-one" })
	defer first.close(t)
	second := startServerWith(t, t.TempDir(), func(c *server.Config) { shareNATS(c, first); c.NodeName = "status-two" })

	for _, asked := range []*instance{first, second} {
		st := clusterStatusJSON(t, asked)
		if got := serverNames(st); !slices.Equal(got, []string{"status-one", "status-two"}) {
			t.Fatalf("asking %s: servers %v, want status-one and status-two", asked.srv.AdminURL(), got)
		}
		for i, in := range []*instance{first, second} {
			s := st.Servers[i]
			want := map[string]string{"address": in.srv.GatewayURL(), "admin": in.srv.AdminURL(), "health": "ok"}
			for field, v := range want {
				if s[field] != v {
					t.Errorf("asking %s: %s's %s %v, want %s", asked.srv.AdminURL(), s["name"], field, s[field], v)
				}
			}
			for _, field := range []string{"version", "last_seen", "started_at"} {
				if v, _ := s[field].(string); v == "" {
					t.Errorf("%s has no %s: %v", s["name"], field, s)
				}
			}
		}
		if *st.MetaLeader != "" {
			t.Errorf("meta leader %q of a NATS that is not clustered", *st.MetaLeader)
		}
	}
	table := clusterStatus(t, second)
	for _, want := range []string{"NAME", "status-one", "status-two", first.srv.GatewayURL(), "JetStream meta leader: none"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table has no %q:\n%s", want, table)
		}
	}

	// Killed: its record stays until it expires, 15 s after its last
	// heartbeat at most.
	second.srv.Kill()
	killed := time.Now()
	eventually(t, 25*time.Second, "the killed server to leave the list", func() bool {
		return slices.Equal(serverNames(clusterStatusJSON(t, first)), []string{"status-one"})
	})
	if took := time.Since(killed); took > 16*time.Second {
		t.Errorf("the killed server was listed for %s, longer than its heartbeat's TTL", took)
	}

	// Stopped cleanly: gone at once.
	third := startServerWith(t, t.TempDir(), func(c *server.Config) { shareNATS(c, first); c.NodeName = "status-three" })
	if got := serverNames(clusterStatusJSON(t, first)); !slices.Equal(got, []string{"status-one", "status-three"}) {
		t.Fatalf("with a third server: %v", got)
	}
	third.close(t)
	if got := serverNames(clusterStatusJSON(t, first)); !slices.Equal(got, []string{"status-one"}) {
		t.Errorf("right after the third server stopped: %v, want status-one alone", got)
	}
}

// TestClusterStatusMetaLeader: in a cluster of three, every member lists
// the three and names the same JetStream meta leader, one of them; and a
// member left without a quorum stops being ready but stays alive.
func TestClusterStatusMetaLeader(t *testing.T) {
	ins, _ := startCluster(t, 3)
	want := []string{"n1", "n2", "n3"}
	var leader string
	for i, in := range ins {
		var st statusJSON
		var seen string
		eventually(t, 60*time.Second, "every member listed with the meta leader", func() bool {
			st = clusterStatusJSON(t, in)
			// What the member said, each time it changed: a timeout shows
			// which part never came.
			if now := fmt.Sprintf("servers %v meta leader %q", serverNames(st), *st.MetaLeader); now != seen {
				seen = now
				t.Logf("member %d: %s", i+1, now)
			}
			return slices.Equal(serverNames(st), want) && *st.MetaLeader != ""
		})
		if !slices.Contains(want, *st.MetaLeader) {
			t.Errorf("meta leader %q is none of the members", *st.MetaLeader)
		}
		if leader != "" && *st.MetaLeader != leader {
			t.Errorf("members disagree on the meta leader: %q and %q", leader, *st.MetaLeader)
		}
		leader = *st.MetaLeader
		for _, s := range st.Servers {
			if s["health"] != "ok" {
				t.Errorf("member %v: health %v", s["name"], s["health"])
			}
		}
	}

	// Two of three lost: the survivor has no quorum. It stops being ready
	// once its heartbeat cannot be written, and stays alive.
	if st := httpStatus(t, ins[0].srv.AdminURL()+"/v1/ready"); st != 200 {
		t.Fatalf("ready with its quorum: %d", st)
	}
	ins[1].srv.Kill()
	ins[2].srv.Kill()
	eventually(t, 60*time.Second, "the survivor to answer /v1/ready with 503", func() bool {
		return httpStatus(t, ins[0].srv.AdminURL()+"/v1/ready") == 503
	})
	if st := httpStatus(t, ins[0].srv.AdminURL()+"/v1/health"); st != 200 {
		t.Errorf("health without a quorum: %d, want 200", st)
	}
}

// httpStatus is the status of a GET of url, without credentials.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
