package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
	"github.com/aegis-platform/aegis/manifest"
)

// outcome is what a differential run compares: the answer, or the kind of
// failure. Exported fields: outcomes cross from one test binary to another
// as JSON (TestEnginesAgree).
type outcome struct {
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	Failure string            `json:"failure,omitempty"`
}

func outcomeOf(resp *Response, err error) outcome {
	if err != nil {
		// The kinds, not the messages: a trap's message is the engine's
		// own wording and differs between engines.
		for _, kind := range []error{ErrTimeout, ErrMemory, ErrResponseTooLarge, ErrTrap} {
			if errors.Is(err, kind) {
				return outcome{Failure: kind.Error()}
			}
		}
		return outcome{Failure: "other: " + err.Error()}
	}
	return outcome{Status: resp.Status, Headers: resp.Headers, Body: string(resp.Body)}
}

func (o outcome) equal(p outcome) bool {
	return o.Status == p.Status && o.Body == p.Body && o.Failure == p.Failure && maps.Equal(o.Headers, p.Headers)
}

// differentialCase is a guest, its limits and the requests it gets.
type differentialCase struct {
	name string
	wasm func(t *testing.T) []byte
	cfg  FunctionConfig
	reqs []*Request
}

// differentialCases are the guests every differential test runs: answers,
// panics, traps, limits hit and guests that never stop, in Go and C,
// reactors and commands.
func differentialCases() []differentialCase {
	// Generous timeouts, so that a slow machine (or the race detector)
	// cannot turn one side's trap into a timeout; only the loops use the
	// short one.
	calm := FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(20 * time.Second), MaxResponse: 1 << 12}}
	short := FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(time.Second)}}
	small := FunctionConfig{Limits: manifest.Limits{Timeout: manifest.Duration(20 * time.Second), Memory: 32 << 20}}
	var hostCalls []*Request
	for _, seed := range hostCallSeeds() {
		hostCalls = append(hostCalls, httpReq("/", string(seed)))
	}
	return []differentialCase{
		{"Go echo", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/echo") }, FunctionConfig{}, []*Request{
			{Kind: KindHTTP, RequestID: "r1", Method: "PUT", Path: "/items/7", Params: map[string]string{"id": "7"},
				Query: map[string][]string{"q": {"search"}}, Headers: map[string][]string{"X-Test": {"yes"}}, Body: []byte("hello \x00 world")},
			httpReq("/", ""),
		}},
		{"echo example", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "../../examples/echo") }, FunctionConfig{}, []*Request{
			httpReq("/echo", `{"message":"hello, aegis"}`), httpReq("/echo", `not json`),
		}},
		{"Go panic", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/panic") }, FunctionConfig{}, []*Request{httpReq("/", "")}},
		{"Go huge response", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/huge") }, calm, []*Request{httpReq("/", "")}},
		{"Go loop", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/loop") }, short, []*Request{httpReq("/spin", "")}},
		{"C reactor", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/kvreactor.c") }, FunctionConfig{}, []*Request{
			httpReq("/", "hi there"), httpReq("/", "oob"),
		}},
		{"C runaway", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/runaway.c") }, calm, []*Request{
			httpReq("/", "sum 100000"), httpReq("/", "ok"), httpReq("/", "recurse"),
		}},
		{"C spin", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/runaway.c") }, short, []*Request{httpReq("/", "spin")}},
		{"Go memory bomb", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/membomb") }, small, []*Request{httpReq("/", "")}},
		{"Go output flood", func(t *testing.T) []byte { return wasmbuild.GoModule(t, "testdata/stdout") }, calm, []*Request{httpReq("/flood", "")}},
		{"C host calls, out-of-bounds pointers", func(t *testing.T) []byte { return wasmbuild.CReactor(t, "testdata/c/hostcalls.c") }, calm, hostCalls},
		{"C command", func(t *testing.T) []byte { return wasmbuild.CCommand(t, "testdata/c/upper.c") }, calm, []*Request{
			httpReq("/", "hello, wasm"), httpReq("/", "fail"),
		}},
	}
}

// runDifferential runs every case on env and returns the outcomes by
// "case #request".
func runDifferential(t *testing.T, env *testEnv) map[string]outcome {
	t.Helper()
	out := map[string]outcome{}
	for _, tc := range differentialCases() {
		f := env.function(t, tc.wasm(t), tc.cfg)
		for i, req := range tc.reqs {
			out[fmt.Sprintf("%s #%d", tc.name, i+1)] = outcomeOf(f.Invoke(context.Background(), req))
		}
	}
	return out
}

// compareOutcomes fails t for every case whose outcomes differ.
func compareOutcomes(t *testing.T, gotName string, got map[string]outcome, wantName string, want map[string]outcome) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no outcome from %s", k, gotName)
			continue
		}
		if !g.equal(want[k]) {
			t.Errorf("%s: %s %+v, %s %+v", k, gotName, g, wantName, want[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s has %d outcomes, %s %d", gotName, len(got), wantName, len(want))
	}
}

// outcomesEnv names the file a child test binary writes its outcomes to.
const outcomesEnv = "AEGIS_ENGINE_OUTCOMES"

// TestEnginesAgree is the differential test between the two engines the
// sandbox builds with: it runs the same guests and requests on this
// build's engine and, through a test binary built with the other engine's
// tag, on the other, and every answer and every kind of failure must be
// the same. A test binary holds one engine, so the other side runs as a
// child `go test`; in it this test only writes its outcomes.
func TestEnginesAgree(t *testing.T) {
	mine := runDifferential(t, newEnv(t))
	if path := os.Getenv(outcomesEnv); path != "" {
		data, err := json.Marshal(mine)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	if differentialAgainst == "" {
		t.Skip("the default build runs the comparison; this build only answers it")
	}
	if testing.Short() {
		t.Skip("builds the sandbox's tests with the other engine")
	}
	path := filepath.Join(t.TempDir(), "outcomes.json")
	cmd := exec.Command("go", "test", "-count=1", "-tags", differentialAgainst, "-run", "^TestEnginesAgree$", ".")
	cmd.Env = append(os.Environ(), outcomesEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run the guests with -tags %s: %v\n%s", differentialAgainst, err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	theirs := map[string]outcome{}
	if err := json.Unmarshal(data, &theirs); err != nil {
		t.Fatal(err)
	}
	compareOutcomes(t, EngineName, mine, "-tags "+differentialAgainst, theirs)
	if len(mine) < 15 {
		t.Errorf("only %d outcomes compared", len(mine))
	}
}

// checkEngineVersion fails t unless EngineName names the version of the
// engine's module this build links: the name is what `aegis version` and
// bench/ report, and an upgrade must not leave it behind.
func checkEngineVersion(t *testing.T, module, name string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	if want := name + " " + strings.TrimSpace(string(out)); EngineName != want {
		t.Errorf("EngineName = %q, but go.mod has %q", EngineName, want)
	}
}
