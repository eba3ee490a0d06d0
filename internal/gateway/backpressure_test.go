package gateway

import "testing"

func TestAsyncBoundsRefuseByTheFullestQueue(t *testing.T) {
	a := newAsyncBounds(4, 2, 3)
	steps := []struct {
		caller, function, want string
	}{
		{"key:a", "app/f", ""},
		{"key:a", "app/f", ""},
		{"key:a", "app/g", queueAsyncCaller}, // a has 2 in flight
		{"key:b", "app/f", ""},
		{"key:c", "app/f", queueAsyncFunction}, // f has 3
		{"key:c", "app/g", ""},
		{"key:d", "app/h", queueAsync}, // 4 in all
	}
	for i, s := range steps {
		if got, _ := a.acquire(s.caller, s.function); got != s.want {
			t.Fatalf("step %d (%s, %s): refused by %q, want %q", i, s.caller, s.function, got, s.want)
		}
	}
	a.release("key:a", "app/f")
	if got, _ := a.acquire("key:d", "app/h"); got != "" {
		t.Errorf("after a release: refused by %q", got)
	}
	for _, r := range [][2]string{{"key:a", "app/f"}, {"key:b", "app/f"}, {"key:c", "app/g"}, {"key:d", "app/h"}} {
		a.release(r[0], r[1])
	}
	if a.total != 0 || len(a.byCaller) != 0 || len(a.byFunction) != 0 {
		t.Errorf("after every release: total %d, %d callers, %d functions; the tables must empty", a.total, len(a.byCaller), len(a.byFunction))
	}
}

// BenchmarkAsyncBounds is what an asynchronous invocation pays for its
// accounting: one acquire and one release (beside a JetStream write of
// its pending record, which costs far more).
//
//	go test ./internal/gateway -run '^$' -bench AsyncBounds
func BenchmarkAsyncBounds(b *testing.B) {
	a := newAsyncBounds(DefaultMaxAsync, DefaultMaxAsyncPerCaller, DefaultMaxAsyncPerFunction)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if q, _ := a.acquire("key:bench", "app/fn"); q == "" {
				a.release("key:bench", "app/fn")
			}
		}
	})
}
