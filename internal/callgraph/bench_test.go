package callgraph

import (
	"context"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// BenchmarkUse is what recording one edge costs an invocation: the
// route → function edge every HTTP invocation adds, into the map a flush
// empties every few seconds (the flush is off the request's path, and set
// far off here so the benchmark measures the edge alone).
func BenchmarkUse(b *testing.B) {
	r := New(Config{Store: memkv.New(), FlushEvery: time.Hour})
	defer func() { _ = r.Close(context.Background()) }()
	e := Edge{Kind: HTTP, From: "POST /echo", To: "echo"}
	b.ReportAllocs()
	for b.Loop() {
		r.Use("echo", e)
	}
}
