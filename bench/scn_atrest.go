package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/internal/vault"
)

// Scenario 14 prices encryption at rest: a table value or an object stored
// as the server stores it (sealed with the app's data key, vault.SealData
// and OpenData with the same associated data the server uses) against the
// same operation on the same node in the clear, as before encryption at
// rest. Both sides run from Go on one embedded node with file storage and
// the bucket options the server gives function tables, alternating rounds,
// so the difference is the sealing and nothing else. The data key lives in
// an in-memory store: after the first use it is read from the vault's
// cache, as on a server. Scenario 3 shows the whole kv host call,
// encryption included, against the clear Go call.
func init() {
	register(Scenario{ID: 14, Name: "encryption at rest: kv get / put and object get / put, sealed vs in the clear", Run: runAtRest})
}

func runAtRest(ctx context.Context, env *Env) ([]*Result, error) {
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: env.TempDir()})
	if err != nil {
		return nil, err
	}
	defer node.Close(context.Background())
	key := make([]byte, vault.MasterKeySize)
	_, _ = rand.Read(key)
	kek, err := vault.NewLocalKMS(key)
	if err != nil {
		return nil, err
	}
	v, err := vault.Open(ctx, vault.Config{Store: memkv.New(), KMS: kek})
	if err != nil {
		return nil, err
	}
	clear, err := node.Bucket(ctx, "t_bench_clear", jetstream.BucketOptions{History: 1, MaxValueSize: 1<<20 + vault.DataOverhead})
	if err != nil {
		return nil, err
	}
	sealedBucket, err := node.Bucket(ctx, "t_bench_sealed", jetstream.BucketOptions{History: 1, MaxValueSize: 1<<20 + vault.DataOverhead})
	if err != nil {
		return nil, err
	}
	objects, err := node.ObjectStore(ctx, "o_bench")
	if err != nil {
		return nil, err
	}

	n := 2000
	if env.Quick {
		n = 50
	}
	// The server's associated data (internal/server/stores.go).
	kvAD, objAD := []byte("table\x00bench\x00k"), []byte("object\x00thumbs/k")
	kvValue := []byte(strings.Repeat("v", 64))
	object := bytes.Repeat([]byte{0x89}, 64<<10) // a thumbnail's size
	var out []*Result

	type op struct {
		name, baseName, notes string
		clear, sealed         func() error
		per                   int
	}
	ops := []op{
		{
			name: "kv put, sealed", baseName: "kv put in the clear", per: n,
			notes: "64-byte value, one key; Bucket.Put of the sealed value vs of the value",
			clear: func() error { _, err := clear.Put(ctx, "k", kvValue); return err },
			sealed: func() error {
				ct, err := v.SealData(ctx, "bench", kvAD, kvValue)
				if err != nil {
					return err
				}
				_, err = sealedBucket.Put(ctx, "k", ct)
				return err
			},
		},
		{
			name: "kv get, sealed", baseName: "kv get in the clear", per: n,
			notes: "64-byte value, one key; Bucket.Get then OpenData vs Bucket.Get",
			clear: func() error { _, _, err := clear.Get(ctx, "k"); return err },
			sealed: func() error {
				ct, _, err := sealedBucket.Get(ctx, "k")
				if err != nil {
					return err
				}
				p, err := v.OpenData(ctx, "bench", kvAD, ct)
				if err == nil && len(p) != len(kvValue) {
					err = fmt.Errorf("opened %d bytes", len(p))
				}
				return err
			},
		},
		{
			name: "object put, sealed", baseName: "object put in the clear", per: n / 10,
			notes: "64 KiB object; ObjectStore.Put of the sealed object vs of the object",
			clear: func() error { return objects.Put(ctx, "clear/k", object) },
			sealed: func() error {
				ct, err := v.SealData(ctx, "bench", objAD, object)
				if err != nil {
					return err
				}
				return objects.Put(ctx, "thumbs/k", ct)
			},
		},
		{
			name: "object get, sealed", baseName: "object get in the clear", per: n / 10,
			notes: "64 KiB object; ObjectStore.Get then OpenData vs ObjectStore.Get",
			clear: func() error { _, err := objects.Get(ctx, "clear/k"); return err },
			sealed: func() error {
				ct, err := objects.Get(ctx, "thumbs/k")
				if err != nil {
					return err
				}
				_, err = v.OpenData(ctx, "bench", objAD, ct)
				return err
			},
		},
	}
	for _, o := range ops {
		// Each put runs once before timing, so the gets find their key.
		if err := o.clear(); err != nil {
			return out, fmt.Errorf("%s: %w", o.baseName, err)
		}
		if err := o.sealed(); err != nil {
			return out, fmt.Errorf("%s: %w", o.name, err)
		}
		timed := func(f func() error) func() (float64, error) {
			return func() (float64, error) {
				start := time.Now()
				for range o.per {
					if err := f(); err != nil {
						return 0, err
					}
				}
				return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(o.per), nil
			}
		}
		b, s, samples, err := Alternate(env.Rounds, timed(o.clear), timed(o.sealed))
		if err != nil {
			return out, fmt.Errorf("%s: %w", o.name, err)
		}
		r := atMost(ratioResult(o.name, "µs", o.baseName, b, s, samples), 1.25, "sealed / clear")
		r.Notes = fmt.Sprintf("%s; mean of %d calls per round.", o.notes, o.per)
		out = append(out, r)
	}
	return out, nil
}
