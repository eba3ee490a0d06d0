package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis/internal/clusterjoin"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/cputime"
	"github.com/aegis-platform/aegis/internal/vault"
)

// Scenario 16: what cluster mode costs. Three servers in this process form
// a cluster on loopback (docs/cluster.md: one join file, the embedded NATS
// of each a member of one NATS cluster with JetStream clustering, every
// stream, bucket and consumer kept on all three: replicas 3); a standalone
// server, started the same way but for the cluster, is the baseline. Both
// run the same two apps and are measured alternately, in the same run:
//
//   - gateway latency: the echo (examples/echo) answered through the
//     cluster, the requests taking turns over its three members, against
//     the standalone server, as scenarios 11 and 15 time it;
//   - event throughput: scenario 6's pipeline (signed, sealed events
//     published into the event stream, the trigger's durable consumer, the
//     C no-op, the ack), published through one member while the trigger's
//     durable consumer is shared by all three (each pulls from it; the
//     consumer lets the function's concurrency be unacknowledged across
//     the cluster, as it does on one server).
//
// The echo writes nothing to JetStream on its way: the key check and the
// route are in memory, the invocation record is published after the reply
// from the function log's own queue. So the latency ratio should be near
// 1.0; what it can lose is the CPU the cluster's other two members and its
// RAFT traffic take on the same machine. An event, on the other hand, is a
// replicated write twice over: the publish is acknowledged once a majority
// of the stream's three replicas stored it, and every ack of the consumer
// is replicated too (its ack floor is RAFT state). All three members share
// this machine's cores, so the cluster does three copies of the storage
// work with the CPUs one server had alone: expect well under 1.0.
func init() {
	register(Scenario{ID: 16, Name: "cluster: echo latency and event throughput through three servers (replicas 3) vs one", Run: runCluster})
}

// clusterSize is how many servers the scenario's cluster has.
const clusterSize = 3

func runCluster(ctx context.Context, env *Env) ([]*Result, error) {
	calls, events, wait := 1500, 20000, 2*time.Minute
	if env.Quick {
		calls, events, wait = 40, 300, 30*time.Second
	}
	echoWasm, echoManifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	noop, err := env.CModule(ctx, fixtureCNoop, true)
	if err != nil {
		return nil, err
	}
	deployBoth := func(in *Instance) error {
		if _, err := in.Deploy(ctx, "echo", echoManifest, echoWasm, "echo"); err != nil {
			return fmt.Errorf("deploy echo: %w", err)
		}
		if _, err := in.Deploy(ctx, eventsApp, eventsManifest, noop, "sink", "source"); err != nil {
			return fmt.Errorf("deploy %s: %w", eventsApp, err)
		}
		return nil
	}

	one, oneNATS, err := startServerWithNATS(ctx, env)
	if err != nil {
		return nil, err
	}
	defer one.Close()
	if err := deployBoth(one); err != nil {
		return nil, err
	}
	cl, err := startCluster(ctx, env, clusterSize)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	// A deploy through one member is served by the others only once they
	// restart (a server reads the apps from JetStream when it starts), and
	// every member must start together (each waits for the cluster's meta
	// leader), so none can be started after a deploy through the first.
	// So the apps are deployed through each member in turn: the registry's
	// records are shared, but a member whose running apps do not hold the
	// app records the request as its next version (registry.Deploy's
	// unchanged path needs the app active on the member deploying it), so
	// the apps end at version 3, the same manifest and modules on every
	// member. Once a member follows the others' deploys, the later two
	// deploys find the app active and answer "unchanged" instead; the
	// scenario works either way. The trigger's durable consumer is named
	// by app, function and trigger only, so the three members pull from
	// one consumer whatever version each runs.
	var retried []string
	for i, m := range cl.members {
		failures, err := settle(func() error { return deployBoth(m) })
		if err != nil {
			return nil, fmt.Errorf("member %d, %d tries: %w", i+1, len(failures), err)
		}
		if len(failures) > 0 {
			retried = append(retried, fmt.Sprintf("member %d, %d failed (the last: %v)", i+1, len(failures), failures[len(failures)-1]))
		}
	}

	lat, cpu, err := clusterEcho(ctx, env, one, cl, calls)
	if err != nil {
		return nil, err
	}
	thr, lost, err := clusterEvents(ctx, env, one, oneNATS, cl, events, wait)
	if err != nil {
		return nil, err
	}
	if len(retried) > 0 {
		lat.Notes += ". Deploying took more than one try: " + strings.Join(retried, "; ")
	}
	return []*Result{lat, cpu, thr, lost}, nil
}

// clusterEcho times the echo through the cluster's members in turn
// against the standalone server.
func clusterEcho(ctx context.Context, env *Env, one *Instance, cl *benchCluster, calls int) (lat, cpuPer *Result, err error) {
	oneKey, err := one.Key(ctx, "bench")
	if err != nil {
		return nil, nil, err
	}
	// A key made through one member authenticates on every member: keys
	// live in JetStream.
	clKey, err := cl.members[0].Key(ctx, "bench")
	if err != nil {
		return nil, nil, err
	}
	hc := newBenchClient()
	oneURL := strings.TrimSuffix(one.Gateway, "/") + "/echo"
	urls := make([]string, len(cl.members))
	for i, m := range cl.members {
		urls[i] = strings.TrimSuffix(m.Gateway, "/") + "/echo"
	}
	alone := func() error { _, err := echoPost(ctx, hc, oneURL, oneKey); return err }
	through := func(i int) func() error {
		return func() error { _, err := echoPost(ctx, hc, urls[i], clKey); return err }
	}
	// Every server warm first (instances, connections, first runs), as
	// alternateWarm does for two.
	for range 20 {
		if err := alone(); err != nil {
			return nil, nil, err
		}
		for i := range urls {
			if err := through(i)(); err != nil {
				return nil, nil, fmt.Errorf("member %d: %w", i+1, err)
			}
		}
	}
	// The CPU the whole process spends per request over each round:
	// the cluster's background work (RAFT heartbeats, the replication of
	// each invocation record to the other two members) is counted where
	// it happens, in this process.
	var cpu []Pair
	var cpuOne float64
	timed := func(op func() error, cpuPer *float64) (float64, error) {
		c0 := cputime.Process()
		p50, err := p50Micros(calls, 0, op)
		*cpuPer = float64(cputime.Process()-c0) / float64(calls) / 1e3
		return p50, err
	}
	// Each round goes through one member, the next round through the
	// next: a client's requests taking turns over the members would make
	// each see a third of the rate, and a server called less often
	// answers more slowly (its goroutines parked, its caches cold), which
	// is not what the cluster costs.
	round := 0
	b, s, samples, err := Alternate(env.Rounds,
		func() (float64, error) { return timed(alone, &cpuOne) },
		func() (float64, error) {
			i := round % len(urls)
			round++
			var c float64
			p50, err := timed(through(i), &c)
			cpu = append(cpu, Pair{Baseline: cpuOne, Subject: c})
			return p50, err
		})
	if err != nil {
		return nil, nil, err
	}
	r := ratioResult("echo median latency, through a 3-server cluster", "µs", "one standalone server", b, s, samples)
	r.RatioNote = "cluster / one"
	r.Target = "≤ 1.10"
	r.Met = quickMet(env, r.Ratio <= 1.10)
	r.Notes = fmt.Sprintf("median of %d sequential requests per round, each round of the cluster's through the next of its %d members (replicas %d); "+
		"no JetStream write on the request path, so what the cluster can cost is the CPU its other members and their RAFT traffic take on the same %d CPUs",
		calls, len(cl.members), clusterSize, runtime.NumCPU())
	c := pairsResult("process CPU per echo request, 3-server cluster", "µs", "one standalone server", cpu)
	c.RatioNote = "cluster / one"
	c.Target = "report"
	c.Notes = "CPU of the whole process (client, the standalone server and the three members, their embedded NATS) over each round's loop, divided by its requests"
	return r, c, nil
}

// clusterEvents runs scenario 6's pipeline through the cluster (published
// through its first member) and through the standalone server,
// alternately.
func clusterEvents(ctx context.Context, env *Env, one *Instance, oneNATS natsAccess, cl *benchCluster, m int, wait time.Duration) (*Result, *Result, error) {
	base, err := openPump(ctx, oneNATS)
	if err != nil {
		return nil, nil, err
	}
	defer base.close()
	subject, err := openPump(ctx, cl.nats[0])
	if err != nil {
		return nil, nil, err
	}
	defer subject.close()

	var lost int
	var redelivered uint64
	round := func(p *eventPump, cluster bool) (float64, error) {
		rate, left, redel, err := p.run(ctx, m, wait)
		if cluster {
			lost += left
			redelivered += redel
		} else if err == nil && left > 0 {
			err = fmt.Errorf("standalone server: %d of %d events not acknowledged after %s", left, m, wait)
		}
		return rate, err
	}
	b, s, samples, err := Alternate(env.Rounds,
		func() (float64, error) { return round(base, false) },
		func() (float64, error) { return round(subject, true) })
	if err != nil {
		return nil, nil, err
	}
	dead, err := cl.members[0].Admin.DLQ(ctx, eventsApp)
	if err != nil {
		return nil, nil, fmt.Errorf("list dead letters: %w", err)
	}
	lost += len(dead)

	r := ratioResult("event pipeline throughput, 3-server cluster", "events/s", "one standalone server", b, s, samples)
	r.RatioNote = "cluster / one; higher is better"
	r.Target = "≥ 0.33"
	r.Met = quickMet(env, r.Ratio >= 0.33)
	r.Notes = fmt.Sprintf("%d events per round published through one member, the trigger's durable consumer (replicas %d) pulled by all %d, "+
		"C no-op reactor (concurrency 10: at most 10 events unacknowledged across the cluster); every publish and every ack a RAFT write on 3 replicas, "+
		"three servers on the same %d CPUs", m, clusterSize, len(cl.members), runtime.NumCPU())
	lr := &Result{Name: "events lost, 3-server cluster", Unit: "events", Subject: float64(lost), Target: "0", Met: Met(lost == 0),
		Notes: fmt.Sprintf("published − acknowledged after success, over %d rounds, dead letters included; %d redeliveries", env.Rounds, redelivered)}
	return r, lr, nil
}

// settle runs deploy until it succeeds, at most maxDeployTries times, and
// says how many tries failed. On this machine a deploy through a member of
// a fresh cluster fails now and then, for reasons of the cluster, not of
// the scenario: the module just uploaded through the member is "never
// uploaded" (the deploy reads it back with a direct get, which any replica
// may answer, and one that has not applied the upload yet finds nothing),
// or reading it times out. What the scenario measures comes after the
// deploys, so it tries again, and the result's notes say how often.
func settle(deploy func() error) (failures []error, err error) {
	for range maxDeployTries {
		if err = deploy(); err == nil {
			return failures, nil
		}
		failures = append(failures, err)
		time.Sleep(250 * time.Millisecond)
	}
	return failures, err
}

const maxDeployTries = 20

// benchCluster is the scenario's cluster: its members and how to reach
// each one's NATS.
type benchCluster struct {
	members []*Instance
	nats    []natsAccess
}

// startCluster starts n servers as one cluster on loopback: one join file,
// n route ports chosen up front (every member names them all as its
// peers), replicas n. The members start at once: each one's Start waits
// for the cluster's JetStream meta leader, which needs a majority.
func startCluster(ctx context.Context, env *Env, n int) (*benchCluster, error) {
	dir := env.TempDir()
	join := filepath.Join(dir, "join.json")
	if err := clusterjoin.Create(join, time.Now()); err != nil {
		return nil, err
	}
	mat, err := clusterjoin.Read(join)
	if err != nil {
		return nil, err
	}
	// nats.go reads a client key from a file: the join file's, as every
	// member's NATS port accepts it.
	seedFile := filepath.Join(dir, "nats.nk")
	if err := os.WriteFile(seedFile, mat.NATSSeed, 0o600); err != nil {
		return nil, fmt.Errorf("write nats client key: %w", err)
	}
	routes := make([]string, n)
	peers := make([]string, n)
	for i := range routes {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		routes[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		peers[i] = "nats-route://" + routes[i]
	}
	cl := &benchCluster{members: make([]*Instance, n), nats: make([]natsAccess, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.members[i], errs[i] = env.StartServerWith(ctx, "", func(c *server.Config) {
				c.ClusterJoin, c.ClusterName, c.ClusterListen, c.ClusterPeers = join, "aegis-bench", routes[i], peers
				c.NodeName, c.Replicas = "bench-"+strconv.Itoa(i+1), n
				c.NATSListen = "127.0.0.1:0"
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		cl.close()
		return nil, fmt.Errorf("start a %d-server cluster: %w", n, err)
	}
	for i, m := range cl.members {
		cl.nats[i] = natsAccess{URL: m.Srv.NATSURL(), SeedFile: seedFile, EventKey: mat.EventKey,
			MasterKey: vault.MasterKeyOptions{Key: mat.MasterKey}}
	}
	return cl, nil
}

// close stops the members at once: stopped one by one, the last two would
// each wait for a quorum that is leaving.
func (cl *benchCluster) close() {
	var wg sync.WaitGroup
	for _, m := range cl.members {
		if m != nil {
			wg.Add(1)
			go func() { defer wg.Done(); m.Close() }()
		}
	}
	wg.Wait()
}
