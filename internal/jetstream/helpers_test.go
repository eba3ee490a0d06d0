package jetstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Small assertions in the style of wazero's internal/testing/require.

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func isErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func equal[T any](t testing.TB, want, got T) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("want %#v, got %#v", want, got)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", d, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var uniqSeq atomic.Int64

// uniq makes a bucket, stream or subject token unique per test and per run,
// so the suite can share one node and run against a long-lived external NATS.
func uniq(t testing.TB) string {
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
	if len(name) > 24 {
		name = name[:24]
	}
	return fmt.Sprintf("%s_%d_%d", name, os.Getpid()%100000, uniqSeq.Add(1))
}

// testSeed is the client key of every embedded node a test opens with a
// port: the one credential it accepts.
var testSeed = func() []byte {
	seed, err := NewClientSeed()
	if err != nil {
		panic(err)
	}
	return seed
}()

// openEmbedded opens an in-process node on a temp data dir, closed at the
// end of the test; with listen set its port accepts testSeed only.
func openEmbedded(t testing.TB, listen string) *Node {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), Listen: listen}
	if listen != "" {
		cfg.ClientSeed = testSeed
	}
	n, err := Open(context.Background(), cfg)
	noErr(t, err)
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}
