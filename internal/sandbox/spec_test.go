package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/aegis-platform/aegis/internal/preempt"
)

// specDir finds the WebAssembly core 2.0 test suite that ships in wazero's
// module (as .wasm files and wast2json command lists), in the module cache
// the build already filled.
func specDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("locate wazero's module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "internal", "integration_test", "spectest", "v2", "testdata")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the spec test suite is not in wazero's module: %v", err)
	}
	return dir
}

type specValue struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type specCommand struct {
	Type     string `json:"type"`
	Line     int    `json:"line"`
	Filename string `json:"filename"`
	Action   *struct {
		Type   string      `json:"type"`
		Module string      `json:"module"`
		Field  string      `json:"field"`
		Args   []specValue `json:"args"`
	} `json:"action"`
}

// specArgs decodes scalar arguments; false for any other kind.
func specArgs(vals []specValue) ([]uint64, bool) {
	out := make([]uint64, 0, len(vals))
	for _, v := range vals {
		s, ok := v.Value.(string)
		if !ok || !slices.Contains([]string{"i32", "i64", "f32", "f64"}, v.Type) {
			return nil, false
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// specPair is one spec module instantiated as it comes and as rewritten.
type specPair struct{ plain, counted api.Module }

// TestPreemptionOnSpecSuite rewrites every module of the WebAssembly 2.0
// spec test suite that the engine accepts, and runs each of the suite's
// invocations (on modules without imports, with scalar arguments) on both:
// the rewrite must accept every module the engine does, the engine must
// accept every rewritten one, and every call must give the same results,
// or trap in both.
func TestPreemptionOnSpecSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles about 2,000 modules twice")
	}
	dir := specDir(t)
	ctx := context.Background()
	// The interpreter decodes and validates like the compiler and runs the
	// same semantics, at a fraction of the compile time for 2,000 modules.
	plainRT := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	countedRT := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer plainRT.Close(ctx)
	defer countedRT.Close(ctx)
	if err := instantiatePreemptModule(ctx, countedRT); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var modules, calls int
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var suite struct {
			Commands []specCommand `json:"commands"`
		}
		if err := json.Unmarshal(data, &suite); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		name := filepath.Base(file)
		var cur *specPair
		for _, c := range suite.Commands {
			switch c.Type {
			case "module":
				if cur != nil {
					_ = cur.plain.Close(ctx)
					_ = cur.counted.Close(ctx)
				}
				cur = specModule(t, ctx, plainRT, countedRT, filepath.Join(dir, c.Filename), name, c.Line)
				if cur != nil {
					modules++
				}
			case "assert_return", "assert_trap", "assert_exhaustion", "action":
				if cur == nil || c.Action == nil || c.Action.Type != "invoke" || c.Action.Module != "" {
					continue
				}
				args, ok := specArgs(c.Action.Args)
				if !ok {
					continue
				}
				if fn := cur.plain.ExportedFunction(c.Action.Field); fn != nil && slices.ContainsFunc(fn.Definition().ResultTypes(),
					isReference) {
					continue // a reference is an address, different in every instance
				}
				calls++
				want, wantErr := specCall(ctx, cur.plain, c.Action.Field, args)
				got, gotErr := specCall(ctx, cur.counted, c.Action.Field, args)
				if (wantErr == nil) != (gotErr == nil) || !slices.Equal(got, want) {
					t.Errorf("%s:%d %s%v: rewritten %v %v, as it came %v %v", name, c.Line, c.Action.Field, args, got, gotErr, want, wantErr)
				}
			}
		}
		if cur != nil {
			_ = cur.plain.Close(ctx)
			_ = cur.counted.Close(ctx)
		}
	}
	t.Logf("%d modules rewritten, %d calls compared", modules, calls)
	if modules < 1000 || calls < 10000 {
		t.Errorf("only %d modules and %d calls: the suite was not read", modules, calls)
	}
}

// specModule instantiates one spec module both ways, or returns nil for a
// module the engine refuses or that imports anything (those are the
// suite's own business: imports need the suite's host module).
func specModule(t *testing.T, ctx context.Context, plainRT, countedRT wazero.Runtime, path, suite string, line int) *specPair {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil // the suite names text modules it never compiled
	}
	plainCM, err := plainRT.CompileModule(ctx, wasm)
	if err != nil {
		return nil
	}
	if len(plainCM.ImportedFunctions()) > 0 || len(plainCM.ImportedMemories()) > 0 {
		return nil
	}
	counted, err := preempt.Instrument(wasm)
	if err != nil {
		t.Errorf("%s:%d: the engine compiles the module, the rewrite refuses it: %v", suite, line, err)
		return nil
	}
	countedCM, err := countedRT.CompileModule(ctx, counted)
	if err != nil {
		t.Errorf("%s:%d: the rewritten module does not compile: %v", suite, line, err)
		return nil
	}
	cfg := wazero.NewModuleConfig().WithName("")
	plain, plainErr := plainRT.InstantiateModule(ctx, plainCM, cfg)
	cm, countedErr := countedRT.InstantiateModule(ctx, countedCM, cfg)
	if (plainErr == nil) != (countedErr == nil) {
		t.Errorf("%s:%d: instantiation as it came: %v, rewritten: %v", suite, line, plainErr, countedErr)
	}
	if plainErr != nil || countedErr != nil {
		return nil
	}
	return &specPair{plain: plain, counted: cm}
}

// isReference: funcref (0x70) or externref, which wazero hands out as
// addresses.
func isReference(t api.ValueType) bool { return t == api.ValueTypeExternref || t == 0x70 }

// specCall calls an export. The deadline only matters to a rewritten
// module gone wrong: its countdown then stops what would otherwise spin
// forever, and the comparison reports it.
func specCall(ctx context.Context, m api.Module, field string, args []uint64) ([]uint64, error) {
	fn := m.ExportedFunction(field)
	if fn == nil {
		return nil, errors.New("no such export")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return fn.Call(ctx, args...)
}
