package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/jetstream"
)

// Scenario 3 prices one kv host call: a guest makes N gets (or puts) in one
// invocation and the same invocation with N = 0 is subtracted, which
// removes the admin API round trip, the dispatch and the guest's own setup
// and leaves N times (ABI crossing + grant check + table lookup + the
// JetStream KV operation). The baseline is the same KV operation from Go on
// a node of the same kind: embedded, file storage, reached through the
// in-process connection the server itself uses, with the bucket options the
// server gives function tables. A separate node is used because the server
// does not expose its own; both are idle apart from the measurement, and
// the rounds alternate between them.

func init() {
	register(Scenario{ID: 3, Name: "host call cost: kv get / put", Run: runKV})
}

var fixtureGoKV = filepath.Join("bench", "testdata", "gokv")

const kvManifest = `app: kvbench
functions:
  kv:
    source: kv.wasm
    grants:
      kv: { write: [bench] }
    limits: { timeout: 5m, concurrency: 1 }
`

// kvValue matches what the guest stores (bench/testdata/gokv).
var kvValue = []byte(strings.Repeat("v", 64))

func runKV(ctx context.Context, env *Env) ([]*Result, error) {
	wasm, err := env.GoModule(ctx, fixtureGoKV)
	if err != nil {
		return nil, err
	}
	in, err := env.StartServer(ctx, "")
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if _, err := in.Deploy(ctx, "kvbench", kvManifest, wasm, "kv"); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}

	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: env.TempDir()})
	if err != nil {
		return nil, err
	}
	defer node.Close(context.Background())
	// The name and options the server uses for table "bench" of app kvbench.
	bucket, err := node.Bucket(ctx, "t_kvbench_bench", jetstream.BucketOptions{History: 1, MaxValueSize: 1 << 20})
	if err != nil {
		return nil, err
	}

	n, reps := 2000, 5
	if env.Quick {
		n, reps = 50, 1
	}
	// The first put creates the key the gets read, on both sides.
	if _, err := bucket.Put(ctx, "k", kvValue); err != nil {
		return nil, err
	}
	if _, err := kvInvoke(ctx, in, "put", 1); err != nil {
		return nil, err
	}

	var out []*Result
	for _, op := range []string{"get", "put"} {
		direct := func() (float64, error) {
			start := time.Now()
			for i := 0; i < n; i++ {
				var err error
				if op == "get" {
					_, _, err = bucket.Get(ctx, "k")
				} else {
					_, err = bucket.Put(ctx, "k", kvValue)
				}
				if err != nil {
					return 0, err
				}
			}
			return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(n), nil
		}
		hosted := func() (float64, error) { return kvPerCall(ctx, in, op, n, reps) }
		b, s, samples, err := Alternate(env.Rounds, direct, hosted)
		if err != nil {
			return out, fmt.Errorf("kv %s: %w", op, err)
		}
		r := ratioResult("kv "+op+" from a function, per call", "µs", "Bucket."+strings.ToUpper(op[:1])+op[1:]+" from Go", b, s, samples)
		r.RatioNote = "host call / direct"
		r.Target = "≤ 1.5×"
		r.Met = Met(r.Ratio <= 1.5)
		r.Notes = fmt.Sprintf("(t(%d calls) − t(0 calls)) / %d, medians of %d invocations each through the admin invoke API, "+
			"Go SDK guest; 64-byte value, one key.", n, n, reps)
		out = append(out, r)
	}
	return out, nil
}

// kvPerCall returns the cost of one host call in µs: the median time of
// reps invocations making n calls, less the median of reps making none,
// divided by n.
func kvPerCall(ctx context.Context, in *Instance, op string, n, reps int) (float64, error) {
	var withN, without []float64
	for i := 0; i < reps; i++ {
		t0, err := kvInvoke(ctx, in, op, 0)
		if err != nil {
			return 0, err
		}
		tn, err := kvInvoke(ctx, in, op, n)
		if err != nil {
			return 0, err
		}
		without, withN = append(without, t0), append(withN, tn)
	}
	return (Median(withN) - Median(without)) / float64(n), nil
}

// kvInvoke runs one invocation making n calls and returns its wall time in µs.
func kvInvoke(ctx context.Context, in *Instance, op string, n int) (float64, error) {
	start := time.Now()
	res, err := in.Admin.Invoke(ctx, "kvbench", "kv", []byte(op+" "+strconv.Itoa(n)))
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Status != 200 || string(res.Body) != strconv.Itoa(n) {
		return 0, fmt.Errorf("invoke %s %d: status %d: %s", op, n, res.Status, res.Body)
	}
	return float64(elapsed.Nanoseconds()) / 1e3, nil
}
