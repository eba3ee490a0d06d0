package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/clusterjoin"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/server"
)

// clusterSpec is how startCluster configured its members, so that a test
// can start a member again on its data directory as a restarted machine
// would be.
type clusterSpec struct {
	join   string
	member func(i int) func(*server.Config)
}

// startCluster starts n servers on loopback forming one cluster (the
// embedded NATS of each a member, JetStream replicated on min(3, n)),
// all started from one join file, at once: each waits for the cluster to
// elect its meta leader.
func startCluster(t *testing.T, n int) ([]*instance, clusterSpec) {
	t.Helper()
	join := filepath.Join(t.TempDir(), "cluster.join")
	if err := clusterjoin.Create(join, time.Now()); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, n)
	var peers []string
	for _, p := range ports {
		peers = append(peers, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	spec := clusterSpec{join: join, member: func(i int) func(*server.Config) {
		return func(c *server.Config) {
			c.ClusterJoin, c.ClusterName, c.ClusterPeers = join, "e2e", peers
			c.ClusterListen = "127.0.0.1:" + strconv.Itoa(ports[i])
			c.NodeName = "n" + strconv.Itoa(i+1)
		}
	}}
	ins := make([]*instance, n)
	for i := range n {
		ins[i] = newServer(t, t.TempDir(), spec.member(i))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ins {
		wg.Go(func() { errs[i] = ins[i].start() })
	}
	wg.Wait()
	// Torn down as a killed process is: closing the members one by one
	// would leave the last ones without a quorum, each of their final
	// writes waiting out its timeout.
	for i := range ins {
		t.Cleanup(ins[i].srv.Kill)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start member %d: %v", i+1, err)
		}
	}
	// A new cluster's streams elect their leaders in the first seconds,
	// and a write meanwhile gets 503 (docs/cluster.md, "Failure modes"):
	// the cluster is up once every member has taken an admin write.
	for i, in := range ins {
		createKeyRetry(t, in, "cluster-warmup-"+strconv.Itoa(i+1))
	}
	return ins, spec
}

// createKeyRetry creates an API key through in, trying again while the
// cluster answers 503 (a stream electing its leader).
func createKeyRetry(t *testing.T, in *instance, name string) *client.NewKey {
	t.Helper()
	var k *client.NewKey
	var err error
	eventually(t, 90*time.Second, "key "+name+" to be created", func() bool {
		k, err = in.admin.CreateKey(context.Background(), name)
		if err != nil && !isStatus(err, http.StatusServiceUnavailable) {
			t.Fatalf("create key %s: %v", name, err)
		}
		return err == nil
	})
	return k
}

// restart starts member i again on the data directory it had, with the
// configuration it had, as a machine back from a crash is.
func (spec clusterSpec) restart(t *testing.T, i int, dataDir string) *instance {
	t.Helper()
	in := newServer(t, dataDir, spec.member(i))
	if err := in.start(); err != nil {
		t.Fatalf("restart member %d: %v", i+1, err)
	}
	t.Cleanup(in.srv.Kill)
	return in
}

// freePorts finds n free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// natsGreeting connects to a NATS port (client or route) on loopback,
// reads its INFO, sends a CONNECT with the given credentials ("" none) and
// a PING, and returns the first line of the answer: "PONG" when let in,
// "-ERR 'Authorization Violation'" when not.
func natsGreeting(t *testing.T, hostport, user, pass string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", hostport, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", hostport, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("%s: no INFO: %q %v", hostport, line, err)
	}
	creds := ""
	if user != "" {
		creds = fmt.Sprintf(`,"user":%q,"pass":%q`, user, pass)
	}
	fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"outsider\"%s}\r\nPING\r\n", creds)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "closed: " + err.Error()
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "INFO ") || line == "" {
			continue
		}
		return line
	}
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Fatalf("url %q: %v", rawURL, err)
	}
	return u.Host
}

// TestCluster: three servers on loopback form a cluster. Every NATS port
// refuses a client or a route without the cluster's credentials; the
// travel diary deployed through one server works through every one,
// whichever server consumes its events; each event is handled once
// across the cluster; a member killed while events are in flight loses
// none of them; and that member, started again on its data directory,
// catches up with what the others did while it was down.
func TestCluster(t *testing.T) {
	ins, spec := startCluster(t, 3)
	ctx := context.Background()
	material, err := clusterjoin.Read(spec.join)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every nats port needs the cluster's credentials", func(t *testing.T) {
		for i, in := range ins {
			clientURL, routeURL := in.srv.NATSURL(), in.srv.RouteURL()
			if clientURL == "" || routeURL == "" {
				t.Fatalf("member %d: client %q route %q", i+1, clientURL, routeURL)
			}
			// Clients: none, a password, a token are refused; the join
			// file's key is let in.
			for name, got := range map[string]string{
				"no credentials": natsGreeting(t, hostOf(t, clientURL), "", ""),
				"a password":     natsGreeting(t, hostOf(t, clientURL), "aegis", "aegis"),
			} {
				if !strings.Contains(got, "Authorization Violation") {
					t.Errorf("member %d client port, %s: %q", i+1, name, got)
				}
			}
			if _, err := jetstream.Open(ctx, jetstream.Config{URL: clientURL}); err == nil {
				t.Errorf("member %d: a client without the key connected", i+1)
			}
			n, err := jetstream.Open(ctx, jetstream.Config{URL: clientURL, ClientSeed: material.NATSSeed})
			if err != nil {
				t.Fatalf("member %d: the join file's key: %v", i+1, err)
			}
			_ = n.Close(ctx)
			// Routes: none, and the route user with another password, are
			// refused.
			for name, got := range map[string]string{
				"no credentials": natsGreeting(t, hostOf(t, routeURL), "", ""),
				"wrong password": natsGreeting(t, hostOf(t, routeURL), clusterjoin.RouteUser, "not-the-password-at-all-0123456789"),
			} {
				if !strings.Contains(got, "Authorization Violation") {
					t.Errorf("member %d route port, %s: %q", i+1, name, got)
				}
			}
			if in.srv.AdminToken() != material.AdminToken {
				t.Errorf("member %d: its root token is not the join file's", i+1)
			}
		}
	})

	var key string
	t.Run("the travel diary deployed through one works through every one", func(t *testing.T) {
		deployTravelDiary(t, ins[0])
		key = createKeyRetry(t, ins[0], "diary").Key // the name checkTravelDiary finds its usage under
		for i, in := range ins {
			eventually(t, 60*time.Second, fmt.Sprintf("member %d to serve the diary", i+1), func() bool {
				st, _, _ := call(t, in.gateway, "GET", "/entries/0123456789abcdef0123456789abcdef", key, nil)
				return st == 404 && routeKnown(t, in, "/entries")
			})
			checkTravelDiary(t, in, key)
		}
	})

	deployProbe(t, ins[0], "testdata/clustered.yaml")
	probeKey := createKeyRetry(t, ins[0], "cluster-probe")
	for i, in := range ins {
		eventually(t, 60*time.Second, fmt.Sprintf("member %d to serve the probe", i+1), func() bool {
			st, _, _ := call(t, in.gateway, "POST", "/clustered/echo", probeKey.Key, []byte("x"))
			return st == 200
		})
	}
	// publish sends one event to the probe's listener through member i
	// and returns the request id it travels under.
	publish := func(t *testing.T, in *instance, v string) string {
		o, id := probe(t, in.gateway, probeKey.Key, "clustered", "publish", map[string]string{"topic": "ok.topic", "value": v})
		if !o.OK {
			t.Fatalf("publish: %+v", o)
		}
		return id
	}
	// handled reports whether the listener recorded the event of id.
	handled := func(t *testing.T, in *instance, id string) bool {
		o, _ := probe(t, in.gateway, probeKey.Key, "clustered", "kv-get", map[string]string{"table": "events", "key": id})
		return o.OK
	}

	t.Run("each event is handled once across the cluster", func(t *testing.T) {
		since := time.Now()
		var ids []string
		for i := range 30 {
			ids = append(ids, publish(t, ins[i%3], "once-"+strconv.Itoa(i)))
		}
		eventually(t, 30*time.Second, "every event handled", func() bool {
			for _, id := range ids {
				if !handled(t, ins[0], id) {
					return false
				}
			}
			return true
		})
		runs := listenerRuns(t, ins[0], since)
		for _, id := range ids {
			if runs[id] != 1 {
				t.Errorf("event %s handled %d times", id, runs[id])
			}
		}
	})

	var killIDs []string // events sent around member 3's death
	t.Run("a member killed under load loses no event", func(t *testing.T) {
		since := time.Now()
		var ids []string
		defer func() { killIDs = ids }()
		for i := range 40 {
			if i == 20 {
				ins[2].srv.Kill()
			}
			target := ins[i%2] // the survivors take every request; member 3 consumes until it dies
			ids = append(ids, publish(t, target, "kill-"+strconv.Itoa(i)))
		}
		eventually(t, 60*time.Second, "every event handled by the survivors", func() bool {
			for _, id := range ids {
				if !handled(t, ins[0], id) {
					return false
				}
			}
			return true
		})
		dl, err := ins[0].admin.DLQ(ctx, "clustered")
		if err != nil {
			t.Fatal(err)
		}
		sent := map[string]bool{}
		for _, id := range ids {
			sent[id] = true
		}
		for _, d := range dl {
			if sent[d.RequestID] {
				t.Errorf("dead letter: %+v", d)
			}
		}
		runs := listenerRuns(t, ins[0], since)
		dups := 0
		for _, id := range ids {
			if runs[id] > 1 {
				dups++
			}
		}
		// At least once: an event member 3 ran but had not acknowledged
		// when it died runs again on a survivor; recording is idempotent.
		t.Logf("%d of %d events ran more than once across the kill", dups, len(ids))
	})

	t.Run("a restarted member catches up", func(t *testing.T) {
		if len(killIDs) == 0 {
			t.Skip("the kill did not run")
		}
		// While member 3 is down: an app deployed, a key created, and
		// the events above recorded by the survivors.
		deployProbe(t, ins[0], "testdata/probe.yaml")
		late, err := ins[1].admin.CreateKey(ctx, "while-n3-was-down")
		if err != nil {
			t.Fatal(err)
		}
		back := spec.restart(t, 2, ins[2].dataDir)
		ins[2] = back
		// Its copy of every replicated stream (apps, keys, tables, events)
		// catches up with the leaders'.
		n, err := jetstream.Open(ctx, jetstream.Config{URL: back.srv.NATSURL(), ClientSeed: material.NATSSeed})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(ctx)
		restarted := time.Now()
		var first []string
		eventually(t, 90*time.Second, "the restarted member's copies to catch up", func() bool {
			lagging, err := n.Lagging(ctx, "n3")
			if first == nil {
				first = lagging
			}
			return err == nil && len(lagging) == 0
		})
		t.Logf("its copies caught up in %v; %d streams were behind at first", time.Since(restarted).Round(time.Millisecond), len(first))
		var lastStatus int
		var lastBody []byte
		defer func() {
			if t.Failed() {
				t.Logf("the restarted member last answered %d %s", lastStatus, lastBody)
			}
		}()
		eventually(t, 60*time.Second, "the restarted member to serve the app deployed while it was down, and the one before", func() bool {
			lastStatus, lastBody, _ = call(t, back.gateway, "POST", "/probe/kv-get", late.Key, map[string]string{"table": "events", "key": "none"})
			// The app it served before the kill is restored from its own
			// copy of the modules, which may not have caught up when it
			// starts: the registry builds it again until it can be read.
			return lastStatus == 200 && routeKnown(t, back, "/clustered/kv-get")
		})
		// The writes made while it was down, read through it.
		for _, id := range killIDs {
			if !handled(t, back, id) {
				t.Errorf("event %s, recorded while member 3 was down, is not seen through it", id)
			}
		}
		// And it takes its share of new work: events published through it
		// are each handled.
		since := time.Now()
		var ids []string
		for i := range 10 {
			ids = append(ids, publish(t, back, "back-"+strconv.Itoa(i)))
		}
		eventually(t, 60*time.Second, "events through the restarted member handled", func() bool {
			for _, id := range ids {
				if !handled(t, back, id) {
					return false
				}
			}
			return true
		})
		runs := listenerRuns(t, back, since)
		for _, id := range ids {
			if runs[id] != 1 {
				t.Errorf("event %s published through the restarted member handled %d times", id, runs[id])
			}
		}
		eventually(t, 30*time.Second, "the restarted member to list the three", func() bool {
			return slices.Equal(serverNames(clusterStatusJSON(t, back)), []string{"n1", "n2", "n3"})
		})
	})
}

// routeKnown reports whether member in routes path to a function (a
// request without credentials gets 401, not 404).
func routeKnown(t *testing.T, in *instance, path string) bool {
	st, _, _ := call(t, in.gateway, "POST", path, "", map[string]string{})
	return st == 401
}

// listenerRuns counts the probe listener's invocations since a time, by
// request id, from the function log every server writes to.
func listenerRuns(t *testing.T, in *instance, since time.Time) map[string]int {
	t.Helper()
	runs := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := in.admin.Logs(ctx, client.LogQuery{App: "clustered", Function: "listener", Since: since, Limit: 10000}, func(r client.LogRecord) error {
		if r.Msg == "invocation" {
			runs[r.RequestID]++
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	return runs
}

// TestSharedNATSNeedsTheSameEventKey: a second server on a first one's NATS
// with its own event signing key is refused at start, naming the fix,
// rather than dead-lettering every event between them as forged.
func TestSharedNATSNeedsTheSameEventKey(t *testing.T) {
	first := startServerWith(t, t.TempDir(), nil)
	t.Cleanup(func() { first.close(t) })
	second := newServer(t, t.TempDir(), func(c *server.Config) {
		c.NATSURL, c.NATSListen, c.NATSNkey = first.srv.NATSURL(), "", natsKeyOf(first)
	})
	err := second.start()
	if err == nil {
		second.close(t)
		t.Fatal("a server with another event key started")
	}
	if !strings.Contains(err.Error(), "--cluster-join") {
		t.Errorf("the refusal does not name the fix: %v", err)
	}
	// Without the key file the NATS port lets nobody in.
	third := newServer(t, t.TempDir(), func(c *server.Config) {
		c.NATSURL, c.NATSListen = first.srv.NATSURL(), ""
	})
	if err := third.start(); err == nil {
		third.close(t)
		t.Fatal("a server without the NATS key connected")
	}
	if fi, err := os.Stat(natsKeyOf(first)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("nats key file: %v %v", fi, err)
	}
}

// TestTwoServersOneJoinFile: two servers started with one join file, the
// first exposing its embedded NATS (--nats-listen), the second using it
// (--nats), share one trust root: the root token, and events published on
// one and consumed on the other are never refused as forged.
func TestTwoServersOneJoinFile(t *testing.T) {
	join := filepath.Join(t.TempDir(), "cluster.join")
	if err := clusterjoin.Create(join, time.Now()); err != nil {
		t.Fatal(err)
	}
	first := startServerWith(t, t.TempDir(), func(c *server.Config) { c.ClusterJoin = join })
	t.Cleanup(func() { first.close(t) })
	deployProbe(t, first, "testdata/probe.yaml")
	second := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.ClusterJoin, c.NATSURL, c.NATSListen = join, first.srv.NATSURL(), ""
	})
	t.Cleanup(func() { second.close(t) })
	if first.srv.AdminToken() != second.srv.AdminToken() {
		t.Fatal("two root tokens")
	}
	k, err := second.admin.CreateKey(context.Background(), "two")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 10 {
		in := []*instance{first, second}[i%2]
		o, id := probe(t, in.gateway, k.Key, "probe", "publish", map[string]string{"topic": "ok.topic", "value": "two-" + strconv.Itoa(i)})
		if !o.OK {
			t.Fatalf("publish: %+v", o)
		}
		ids = append(ids, id)
	}
	eventually(t, 30*time.Second, "every event handled", func() bool {
		for _, id := range ids {
			if o, _ := probe(t, first.gateway, k.Key, "probe", "kv-get", map[string]string{"table": "events", "key": id}); !o.OK {
				return false
			}
		}
		return true
	})
	if dl, err := first.admin.DLQ(context.Background(), "probe"); err != nil || len(dl) != 0 {
		t.Fatalf("dead letters: %v %v", dl, err)
	}
}
