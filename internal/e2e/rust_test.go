package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestRustFunction: examples/hello-rust, a crate over sdk/rust built by
// `aegis deploy` with cargo, answers its route with its path parameter and
// keeps its count in the table its grant names.
func TestRustFunction(t *testing.T) {
	in, key := sharedServer(t)
	if code, out, errs := aegisCLI(t, in, "deploy", "-f", "../../examples/hello-rust/aegis.yaml"); code != 0 {
		t.Fatalf("aegis deploy hello-rust: exit %d\n%s%s", code, out, errs)
	}
	for i := 1; i <= 2; i++ {
		st, body, _ := call(t, in.gateway, "GET", "/hello/ferris", key, nil)
		want := fmt.Sprintf(`{"message":"hello, ferris","times":%d}`, i)
		if st != 200 || strings.TrimSpace(string(body)) != want {
			t.Fatalf("GET /hello/ferris #%d: %d %s, want %s", i, st, body, want)
		}
	}
	if st, _, _ := call(t, in.gateway, "GET", "/hello/ferris", "", nil); st != 401 {
		t.Errorf("without a key: %d, want 401", st)
	}
}
