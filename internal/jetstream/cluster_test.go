package jetstream

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

// openCluster starts n embedded members of one cluster on loopback, at
// once (each waits for the meta leader), replicas min(3, n).
func openCluster(t *testing.T, n int) []*Node {
	t.Helper()
	return openClusterWith(t, n, nil)
}

// openClusterWith is openCluster with each member's Cluster changed by
// adjust (when not nil) before it opens.
func openClusterWith(t *testing.T, n int, adjust func(i int, c *Cluster)) []*Node {
	t.Helper()
	nodes, _ := openClusterConfigs(t, n, adjust)
	return nodes
}

// openClusterConfigs is openClusterWith, also returning each member's
// configuration, to open one again (as a restarted server does).
func openClusterConfigs(t *testing.T, n int, adjust func(i int, c *Cluster)) ([]*Node, []Config) {
	t.Helper()
	cfgs := clusterConfigs(t, n, adjust)
	return openMembers(t, cfgs), cfgs
}

// clusterConfigs configures n members of one cluster on loopback.
func clusterConfigs(t *testing.T, n int, adjust func(i int, c *Cluster)) []Config {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		noErr(t, err)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	var peers []string
	for _, p := range ports {
		peers = append(peers, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	cfgs := make([]Config, n)
	for i := range n {
		c := &Cluster{Name: "test", NodeName: "m" + strconv.Itoa(i+1), Listen: "127.0.0.1:" + strconv.Itoa(ports[i]),
			Peers: peers, RouteUser: "aegis-route", RoutePassword: "0123456789abcdef0123456789abcdef"}
		if adjust != nil {
			adjust(i, c)
		}
		cfgs[i] = Config{DataDir: t.TempDir(), ClientSeed: testSeed, Replicas: min(3, n), Cluster: c}
	}
	return cfgs
}

// openMembers opens the members of cfgs at once, as servers starting
// together do.
func openMembers(t *testing.T, cfgs []Config) []*Node {
	t.Helper()
	nodes := make([]*Node, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			nodes[i], errs[i] = Open(ctx, cfgs[i])
		})
	}
	wg.Wait()
	for i := range cfgs {
		noErr(t, errs[i])
		t.Cleanup(func() { _ = nodes[i].Close(context.Background()) })
	}
	return nodes
}

// TestClusterReplicatesAndSurvivesAMember: three members form a cluster
// with a meta leader; they create the same buckets at once (as servers
// starting together do) without one waiting forever; a value written on
// one is read on the others; with one member killed the other two still
// read and write.
func TestClusterReplicatesAndSurvivesAMember(t *testing.T) {
	nodes := openCluster(t, 3)
	if nodes[0].MetaLeader() == "" || nodes[0].RouteURL() == "" || nodes[1].ServerName() != "m2" || nodes[0].Replicas() != 3 {
		t.Fatalf("leader %q route %q name %q replicas %d", nodes[0].MetaLeader(), nodes[0].RouteURL(), nodes[1].ServerName(), nodes[0].Replicas())
	}
	buckets := make([]*Bucket, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, name := range []string{"shared_a", "shared_b", "shared"} {
				if buckets[i], errs[i] = nodes[i].Bucket(ctx, name, BucketOptions{History: 1}); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		noErr(t, err)
	}
	ctx := testCtx(t)
	_, err := buckets[0].Put(ctx, "k", []byte("v1"))
	noErr(t, err)
	// Reads come from the stream's leader (leaderReads): a write made
	// through one member is read at once through every other.
	for round := range 20 {
		v := "v1-" + strconv.Itoa(round)
		_, err := buckets[round%3].Put(ctx, "k", []byte(v))
		noErr(t, err)
		for i := range nodes {
			got, err := getAvailable(t, buckets[i], "k")
			noErr(t, err)
			equal(t, v, string(got))
		}
	}
	// A member lost: the two others keep a quorum.
	nodes[2].Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = buckets[0].Put(ctx, "k", []byte("v2"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	noErr(t, err)
	readEventually(t, buckets[1], "k", "v2")
}

func readEventually(t *testing.T, b *Bucket, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _, err := b.Get(testCtx(t), key)
		if err == nil && string(v) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %s: %q %v, want %q", key, v, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterConfigRefusals(t *testing.T) {
	good := Cluster{Name: "c", NodeName: "n1", Listen: "127.0.0.1:0", Peers: []string{"nats-route://127.0.0.1:6222"},
		RouteUser: "aegis-route", RoutePassword: "0123456789abcdef0123456789abcdef"}
	for name, mut := range map[string]func(*Cluster){
		"no name":            func(c *Cluster) { c.Name = "" },
		"dotted node":        func(c *Cluster) { c.NodeName = "a.b" },
		"no peers":           func(c *Cluster) { c.Peers = nil },
		"peer with password": func(c *Cluster) { c.Peers = []string{"nats-route://u:p@127.0.0.1:6222"} },
		"client url as peer": func(c *Cluster) { c.Peers = []string{"nats://127.0.0.1:4222"} },
		"short password":     func(c *Cluster) { c.RoutePassword = "short" },
		"bad listen":         func(c *Cluster) { c.Listen = "nowhere" },
		"tls without a CA":   func(c *Cluster) { c.CertFile, c.KeyFile = "member.pem", "member.key" },
		"tls without a key":  func(c *Cluster) { c.CertFile, c.CAFile = "member.pem", "ca.pem" },
	} {
		c := good
		mut(&c)
		_, err := Open(context.Background(), Config{DataDir: t.TempDir(), ClientSeed: testSeed, Cluster: &c})
		isErr(t, err, aegis.ErrInvalidArgument)
		if err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	// A cluster member without a client key: refused, never open.
	_, err := Open(context.Background(), Config{DataDir: t.TempDir(), Cluster: &good})
	isErr(t, err, aegis.ErrInvalidArgument)
}

// getAvailable reads key, trying again while the stream is unavailable (a
// leader being elected under a loaded machine): never on a stale answer,
// which is what the test is about.
func getAvailable(t *testing.T, b *Bucket, key string) ([]byte, error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, _, err := b.Get(testCtx(t), key)
		if !errors.Is(err, aegis.ErrUnavailable) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterBucketsReadFromTheLeaderOnly: a replicated bucket's stream
// never answers direct gets, not even for a moment while members open it
// at once or again (as servers starting together or restarting do). A
// member whose handle was bound while another member's open had turned
// direct gets on asked replicas that stopped answering a moment later,
// and every read through it failed "no responders" for as long as it ran.
func TestClusterBucketsReadFromTheLeaderOnly(t *testing.T) {
	nodes := openCluster(t, 3)
	ctx := testCtx(t)
	const name = "leader_reads"

	open := func(round int) []*Bucket {
		buckets := make([]*Bucket, len(nodes))
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			n.mu.Lock()
			delete(n.buckets, name) // opened anew, as a restarted server does
			n.mu.Unlock()
			wg.Go(func() { buckets[i], errs[i] = n.Bucket(ctx, name, BucketOptions{History: 1}) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: member %d opens the bucket: %v", round, i+1, err)
			}
		}
		return buckets
	}
	// Watched from the first open on: the stream's configuration, as any
	// member sees it, never allows direct gets.
	var direct atomic.Bool
	stop := make(chan struct{})
	var watching sync.WaitGroup
	watch := func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			c, cancel := context.WithTimeout(ctx, time.Second)
			s, err := nodes[0].js.Stream(c, "KV_"+name)
			cancel()
			if err == nil && s.CachedInfo().Config.AllowDirect {
				direct.Store(true)
			}
		}
	}
	for round := range 5 {
		buckets := open(round)
		if round == 0 {
			watching.Go(watch)
		}
		v := "v" + strconv.Itoa(round)
		if _, err := buckets[round%3].Put(ctx, "k", []byte(v)); err != nil {
			t.Fatalf("round %d: put: %v", round, err)
		}
		for i, b := range buckets {
			got, _, err := b.Get(ctx, "k") // at once, no retry
			if err != nil || string(got) != v {
				t.Fatalf("round %d: member %d reads %q, %v; want %q", round, i+1, got, err, v)
			}
		}
	}
	close(stop)
	watching.Wait()
	if direct.Load() {
		t.Error("the bucket's stream allowed direct gets while members opened it again")
	}
}

// TestClusterStoresMadeWhileAMemberIsDown: with one of three members down,
// a new bucket, object store and stream are still created (JetStream
// places a new stream only on members it has heard from), with two
// replicas, and raised to three once the member is up; an existing store
// is never shrunk.
func TestClusterStoresMadeWhileAMemberIsDown(t *testing.T) {
	cfgs := clusterConfigs(t, 3, nil)
	nodes := openMembers(t, cfgs)
	// The third member goes down, and the two others restart meanwhile
	// (an upgrade during an outage): they have not heard from it since.
	nodes[2].Kill()
	for _, n := range nodes[:2] {
		n.Kill()
	}
	nodes = openMembers(t, cfgs[:2])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	replicas := func(stream string) int {
		t.Helper()
		s, err := nodes[0].js.Stream(ctx, stream)
		noErr(t, err)
		return s.CachedInfo().Config.Replicas
	}
	b, err := nodes[0].Bucket(ctx, "made_short", BucketOptions{})
	noErr(t, err)
	_, err = nodes[0].ObjectStore(ctx, "objects_short")
	noErr(t, err)
	noErr(t, nodes[1].EnsureStream(ctx, StreamConfig{Name: "STREAM_SHORT", Subjects: []string{"short.>"}}))
	_, err = b.Put(ctx, "k", []byte("v"))
	noErr(t, err)
	for _, s := range []string{"KV_made_short", "OBJ_objects_short", "STREAM_SHORT"} {
		equal(t, 2, replicas(s))
	}
	// Opened on the other member: kept as it is.
	_, err = nodes[1].Bucket(ctx, "made_short", BucketOptions{})
	noErr(t, err)
	equal(t, 2, replicas("KV_made_short"))
	// While the member is still down, raising fails and is tried again.
	nodes[0].raiseShort(ctx)
	equal(t, 2, replicas("KV_made_short"))
	nodes[0].mu.Lock()
	left := len(nodes[0].short)
	nodes[0].mu.Unlock()
	equal(t, 2, left)

	third, err := Open(ctx, cfgs[2])
	noErr(t, err)
	t.Cleanup(func() { _ = third.Close(context.Background()) })
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		for {
			n.raiseShort(ctx)
			n.mu.Lock()
			left := len(n.short)
			n.mu.Unlock()
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d stores still short 30s after the member came up", left)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, s := range []string{"KV_made_short", "OBJ_objects_short", "STREAM_SHORT"} {
		equal(t, 3, replicas(s))
	}
	v, _, err := b.Get(ctx, "k")
	noErr(t, err)
	equal(t, "v", string(v))
	// An existing store is never shrunk: with the third member killed, a
	// member opening the full bucket again keeps its three replicas.
	third.Kill()
	nodes[1].mu.Lock()
	delete(nodes[1].buckets, "made_short")
	nodes[1].mu.Unlock()
	_, err = nodes[1].Bucket(ctx, "made_short", BucketOptions{})
	noErr(t, err)
	equal(t, 3, replicas("KV_made_short"))
}
