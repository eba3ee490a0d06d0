package sandbox

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// FuzzHostCallArguments hands every host function the pointers and
// lengths the fuzzer makes up, through a guest compiled as every other is
// on this build's engine: whatever they are, a host call
// returns an error code or the invocation fails as the guest's fault, the
// host never panics, and the function keeps serving.
func FuzzHostCallArguments(f *testing.F) {
	for _, seed := range hostCallSeeds() {
		f.Add(seed)
	}
	env := newEnv(f)
	fn := env.function(f, wasmbuild.CReactor(f, "testdata/c/hostcalls.c"), FunctionConfig{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := fn.Invoke(ctx, httpReq("/", string(body)))
		if err != nil && (strings.Contains(err.Error(), "recovered by") || strings.Contains(err.Error(), "runtime error")) {
			t.Fatalf("a host function panicked: %v", err)
		}
		if _, err := fn.Invoke(ctx, httpReq("/", "")); err != nil {
			t.Fatalf("the function stopped serving: %v", err)
		}
	})
}

// hostCallSeeds are request bodies for testdata/c/hostcalls.c that pass
// host functions pointers at the edges of memory and past them: the
// fuzzer's seeds, and requests of the engines' differential test.
func hostCallSeeds() [][]byte {
	triples := func(ts ...[3]uint32) []byte {
		var b []byte
		for _, t := range ts {
			for _, v := range t {
				b = binary.LittleEndian.AppendUint32(b, v)
			}
		}
		return b
	}
	return [][]byte{
		triples([3]uint32{0, 1024, 8}, [3]uint32{11, 1024, 64}),
		triples([3]uint32{1, 0xFFFFFFF0, 64}, [3]uint32{5, 0x7FFFFFF0, 100}),
		triples([3]uint32{13, 0, 0xFFFFFFFF}, [3]uint32{12, 65536, 1 << 20}),
		triples([3]uint32{8, 1024, 200}, [3]uint32{9, 2048, 300}, [3]uint32{10, 99, 16}),
		triples([3]uint32{15, 1024, 4}, [3]uint32{14, 0, 0}),
		triples([3]uint32{16, 1024, 8}, [3]uint32{16, 0xFFFFFFF0, 64}, [3]uint32{16, 0, 5000}, [3]uint32{11, 1024, 64}),
	}
}
