package preempt

import (
	"errors"
	"testing"
)

// FuzzInstrument feeds arbitrary bytes, as any deployer could upload, to
// the rewriter: it must never panic, and what it accepts must come out as
// a module with exactly one more imported function and one more global,
// the same functions, and the tick among its imports (so a second pass
// refuses it).
func FuzzInstrument(f *testing.F) {
	f.Add(sample())
	f.Add([]byte(header))
	f.Add(cat([]byte(header), sec(1, vec([]byte{0x60, 0x00, 0x00})), sec(3, vec(u32(0))),
		sec(10, vec(fnBody(0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B)))))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrReservedImport) {
				t.Fatalf("refusal outside the sentinels: %v", err)
			}
			return
		}
		in, err := parse(wasm, false)
		if err != nil {
			t.Fatalf("accepted bytes that do not parse: %v", err)
		}
		got, err := parse(out, true)
		if err != nil {
			t.Fatalf("the output does not parse: %v", err)
		}
		if got.importedFuncs != in.importedFuncs+1 || got.definedFuncs != in.definedFuncs ||
			got.importedGlobals != in.importedGlobals || got.definedGlobals != in.definedGlobals+1 {
			t.Fatalf("counts changed: in %+v, out %+v", in, got)
		}
		if _, err := Instrument(out); !errors.Is(err, ErrReservedImport) {
			t.Fatalf("the output instruments again: %v", err)
		}
	})
}
