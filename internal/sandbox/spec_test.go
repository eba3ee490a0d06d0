package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"math"
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

// specPair is one spec module instantiated on the reference and on the
// engine as the sandbox runs it.
type specPair struct {
	reference api.Module
	subject   guestModule
}

// TestEngineOnSpecSuite runs every module of the WebAssembly 2.0 spec test
// suite that the reference accepts through this build's engine the way the
// sandbox runs modules (wazy's compiler; or wazero's compiler with the
// countdown rewrite), and runs each of the suite's invocations (on modules
// without imports, with scalar arguments) on both. The reference is
// wazero's interpreter with the modules as they come, an implementation
// independent of both compilers. The engine must accept every module the
// reference does, and every call must give the same results, or trap in
// both. wazy ships without the suite; this is how its compiler meets it.
func TestEngineOnSpecSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles about 2,000 modules twice")
	}
	dir := specDir(t)
	ctx := context.Background()
	refRT := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer refRT.Close(ctx)
	instrument, imports := preemption(false)
	subjectRT := newRuntime(ctx, nil, false)
	defer subjectRT.Close(ctx)
	if err := imports(ctx, subjectRT); err != nil {
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
				cur.close(ctx)
				cur = specModule(t, ctx, refRT, subjectRT, instrument, filepath.Join(dir, c.Filename), name, c.Line)
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
				if fn := cur.reference.ExportedFunction(c.Action.Field); fn != nil && slices.ContainsFunc(fn.Definition().ResultTypes(),
					isReference) {
					continue // a reference is an address, different in every instance
				}
				calls++
				want, wantErr := specCall(ctx, cur.reference.ExportedFunction(c.Action.Field), args)
				got, gotErr := specCall(ctx, cur.subject.ExportedFunction(c.Action.Field), args)
				types := cur.reference.ExportedFunction(c.Action.Field).Definition().ResultTypes()
				if (wantErr == nil) != (gotErr == nil) || !sameResults(types, got, want) {
					t.Errorf("%s:%d %s%v: %s %v %v, reference %v %v", name, c.Line, c.Action.Field, args, EngineName, got, gotErr, want, wantErr)
				}
			}
		}
		cur.close(ctx)
	}
	t.Logf("%s: %d modules, %d calls compared with the reference", EngineName, modules, calls)
	if modules < 1000 || calls < 10000 {
		t.Errorf("only %d modules and %d calls: the suite was not read", modules, calls)
	}
}

func (p *specPair) close(ctx context.Context) {
	if p != nil {
		_ = p.reference.Close(ctx)
		_ = p.subject.Close(ctx)
	}
}

// specModule instantiates one spec module on both runtimes, or returns nil
// for a module the reference refuses or that imports anything (those are
// the suite's own business: imports need the suite's host module).
func specModule(t *testing.T, ctx context.Context, refRT wazero.Runtime, subjectRT wasmRuntime, instrument func([]byte) ([]byte, error), path, suite string, line int) *specPair {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil // the suite names text modules it never compiled
	}
	refCM, err := refRT.CompileModule(ctx, wasm)
	if err != nil {
		return nil
	}
	if len(refCM.ImportedFunctions()) > 0 || len(refCM.ImportedMemories()) > 0 {
		return nil
	}
	prepared, err := instrument(wasm)
	if err != nil {
		t.Errorf("%s:%d: the reference compiles the module, the rewrite refuses it: %v", suite, line, err)
		return nil
	}
	subjectCM, err := subjectRT.CompileModule(ctx, prepared)
	if err != nil {
		t.Errorf("%s:%d: the reference compiles the module, %s does not: %v", suite, line, EngineName, err)
		return nil
	}
	ref, refErr := refRT.InstantiateModule(ctx, refCM, wazero.NewModuleConfig().WithName(""))
	subject, subjectErr := subjectRT.InstantiateModule(ctx, subjectCM, newModuleConfig().WithName(""))
	if (refErr == nil) != (subjectErr == nil) {
		t.Errorf("%s:%d: instantiation on the reference: %v, on %s: %v", suite, line, refErr, EngineName, subjectErr)
	}
	if refErr != nil || subjectErr != nil {
		return nil
	}
	return &specPair{reference: ref, subject: subject}
}

// isReference: funcref (0x70) or externref, which engines hand out as
// addresses.
func isReference(t api.ValueType) bool { return t == api.ValueTypeExternref || t == 0x70 }

// specCall calls an export. The deadline only matters to an engine gone
// wrong: its preemption then stops what would otherwise spin forever, and
// the comparison reports it.
func specCall(ctx context.Context, fn interface {
	Call(context.Context, ...uint64) ([]uint64, error)
}, args []uint64) ([]uint64, error) {
	if fn == nil {
		return nil, errors.New("no such export")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return fn.Call(ctx, args...)
}

// sameResults compares results bit for bit (the low half of 32-bit ones),
// except that any NaN equals any other: the spec lets arithmetic produce a NaN of any payload (its tests
// expect "nan:canonical" or "nan:arithmetic" there), and compilers differ
// in which they produce.
func sameResults(types []api.ValueType, a, b []uint64) bool {
	if len(a) != len(b) || len(a) != len(types) {
		return len(a) == len(b) && slices.Equal(a, b)
	}
	for i, t := range types {
		switch {
		case a[i] == b[i]:
		case (t == api.ValueTypeI32 || t == api.ValueTypeF32) && uint32(a[i]) == uint32(b[i]):
			// A 32-bit result's upper half is undefined: compiled code
			// may leave anything there (api.DecodeI32 ignores it).
		case t == api.ValueTypeF32 && isNaN32(a[i]) && isNaN32(b[i]):
		case t == api.ValueTypeF64 && math.IsNaN(math.Float64frombits(a[i])) && math.IsNaN(math.Float64frombits(b[i])):
		default:
			return false
		}
	}
	return true
}

func isNaN32(v uint64) bool { f := math.Float32frombits(uint32(v)); return f != f }
