package preempt

import (
	"bytes"
	"errors"
	"testing"
)

// The tests assemble modules byte by byte; the sandbox's tests compile and
// run what Instrument makes of real Go and C modules.

func u32(v uint32) []byte { return appendU32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func vec(items ...[]byte) []byte { return cat(u32(uint32(len(items))), cat(items...)) }

func str(s string) []byte { return cat(u32(uint32(len(s))), []byte(s)) }

func sec(id byte, payload ...[]byte) []byte {
	p := cat(payload...)
	return cat([]byte{id}, u32(uint32(len(p))), p)
}

func fnBody(code ...byte) []byte {
	b := cat([]byte{0x00}, code) // no locals
	return cat(u32(uint32(len(b))), b)
}

const header = "\x00asm\x01\x00\x00\x00"

// sample has an imported function and global, a function calling another,
// a loop inside a block, a start function, an element segment, a ref.func
// in a global initializer, exports and function names: every place a
// function index lives.
func sample() []byte {
	return cat([]byte(header),
		sec(1, vec(
			[]byte{0x60, 0x00, 0x01, 0x7F},       // 0: () -> i32
			[]byte{0x60, 0x01, 0x7F, 0x01, 0x7F}, // 1: (i32) -> i32
			[]byte{0x60, 0x00, 0x00},             // 2: () -> ()
		)),
		sec(2, vec(
			cat(str("env"), str("f"), []byte{0x00}, u32(0)),
			cat(str("env"), str("g"), []byte{0x03, 0x7F, 0x00}),
		)),
		sec(3, vec(u32(0), u32(1), u32(2))), // functions 1, 2, 3
		sec(4, vec([]byte{0x70, 0x00, 0x02})),
		sec(5, vec([]byte{0x00, 0x01})),
		sec(6, vec(
			[]byte{0x7F, 0x01, 0x41, 0x05, 0x0B}, // global 1: i32 = 5
			[]byte{0x70, 0x00, 0xD2, 0x02, 0x0B}, // global 2: funcref = ref.func 2
			[]byte{0x7F, 0x00, 0x23, 0x00, 0x0B}, // global 3: i32 = global.get 0
		)),
		sec(7, vec(
			cat(str("aegis_handle"), []byte{0x00}, u32(1)),
			cat(str("memory"), []byte{0x02}, u32(0)),
			cat(str("five"), []byte{0x03}, u32(1)),
		)),
		sec(8, u32(3)),
		sec(9, vec(cat(u32(0), []byte{0x41, 0x00, 0x0B}, vec(u32(1), u32(2))))),
		sec(10, vec(
			// 1: i32.const 7; call 2; end
			fnBody(0x41, 0x07, 0x10, 0x02, 0x0B),
			// 2: block; loop; local.get 0; i32.const 1; i32.sub; local.tee 0; br_if 0; end; end; local.get 0; end
			fnBody(0x02, 0x40, 0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6B, 0x22, 0x00, 0x0D, 0x00, 0x0B, 0x0B, 0x20, 0x00, 0x0B),
			// 3: nop; end
			fnBody(0x01, 0x0B),
		)),
		sec(0, str("name"), []byte{0x01}, u32(14), vec(cat(u32(1), str("main")), cat(u32(3), str("start")))),
		sec(0, str(".debug_info"), []byte{0x01, 0x02}),
	)
}

// sections splits a module into its sections' bodies, by id; custom
// sections by name.
func sections(t *testing.T, wasm []byte) (map[byte][]byte, map[string][]byte) {
	t.Helper()
	m, err := parse(wasm, true)
	if err != nil {
		t.Fatalf("the output does not parse: %v", err)
	}
	known, custom := map[byte][]byte{}, map[string][]byte{}
	for _, s := range m.sections {
		if s.id == secCustom {
			custom[s.name] = s.body
		} else {
			known[s.id] = s.body
		}
	}
	return known, custom
}

func countdown(counter, tick uint32) []byte {
	return (&rewriter{counter: counter, tick: tick}).appendCountdown(nil)
}

func TestInstrumentShiftsEveryFunctionIndex(t *testing.T) {
	out, err := Instrument(sample())
	if err != nil {
		t.Fatal(err)
	}
	known, custom := sections(t, out)
	m, _ := parse(out, true)
	if m.importedFuncs != 2 || m.importedGlobals != 1 || m.definedGlobals != 4 || m.types != 4 {
		t.Fatalf("imports %d funcs %d globals, %d globals defined, %d types", m.importedFuncs, m.importedGlobals, m.definedGlobals, m.types)
	}
	// The tick is the last import, of the added type () -> i32 (index 3).
	if want := cat(str(ImportModule), str(ImportName), []byte{0x00}, u32(3)); !bytes.HasSuffix(known[2], want) {
		t.Errorf("import section %x does not end with the tick %x", known[2], want)
	}
	if !bytes.HasSuffix(known[1], tickFuncType) {
		t.Errorf("type section %x does not end with () -> i32", known[1])
	}
	// The counter is global 4 (after the imported one and three defined).
	if want := []byte{0x7F, 0x01, 0x41, 0x80, 0x80, 0x01, 0x0B}; !bytes.HasSuffix(known[6], want) {
		t.Errorf("global section %x does not end with the counter %x", known[6], want)
	}
	checks := []struct {
		what      string
		got, want []byte
	}{
		{"ref.func in a global", known[6][1:][5:10], []byte{0x70, 0x00, 0xD2, 0x03, 0x0B}},
		{"global.get of the import", known[6][1:][10:15], []byte{0x7F, 0x00, 0x23, 0x00, 0x0B}},
		{"exported function", known[7][:len(str("aegis_handle"))+3], cat(u32(3), str("aegis_handle"), []byte{0x00}, u32(2))},
		{"start", known[8], u32(4)},
		{"element segment", known[9], vec(cat(u32(0), []byte{0x41, 0x00, 0x0B}, vec(u32(2), u32(3))))},
		{"function names", custom["name"], cat(str("name"), []byte{0x01}, u32(14), vec(cat(u32(2), str("main")), cat(u32(4), str("start"))))},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: %x, want %x", c.what, c.got, c.want)
		}
	}
	if _, ok := custom[".debug_info"]; ok {
		t.Errorf("debug information pointing at moved code was kept")
	}
	cd := countdown(4, 1)
	wantCode := vec(
		// A countdown at entry, and the call to function 2 now 3.
		fnBody(cat(cd, []byte{0x41, 0x07, 0x10, 0x03, 0x0B})...),
		// Straight into a loop: its countdown serves as the entry's.
		fnBody(cat([]byte{0x02, 0x40, 0x03, 0x40}, cd, []byte{0x20, 0x00, 0x41, 0x01, 0x6B, 0x22, 0x00, 0x0D, 0x00, 0x0B, 0x0B, 0x20, 0x00, 0x0B})...),
		fnBody(cat(cd, []byte{0x01, 0x0B})...),
	)
	if !bytes.Equal(known[10], wantCode) {
		t.Errorf("code section\n got %x\nwant %x", known[10], wantCode)
	}
}

// A module without imports, globals or types gets the sections it needs,
// each in its place.
func TestInstrumentAddsMissingSections(t *testing.T) {
	in := cat([]byte(header),
		sec(1, vec([]byte{0x60, 0x00, 0x00})),
		sec(3, vec(u32(0))),
		sec(7, vec(cat(str("_start"), []byte{0x00}, u32(0)))),
		sec(10, vec(fnBody(0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B))), // loop; br 0; end: spins
	)
	out, err := Instrument(in)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parse(out, true)
	if err != nil {
		t.Fatal(err)
	}
	var ids []byte
	for _, s := range m.sections {
		ids = append(ids, s.id)
	}
	if !bytes.Equal(ids, []byte{1, 2, 3, 6, 7, 10}) {
		t.Errorf("sections %v, want types, imports, functions, globals, exports, code", ids)
	}
	known, _ := sections(t, out)
	if want := cat(u32(1), str("_start"), []byte{0x00}, u32(1)); !bytes.Equal(known[7], want) {
		t.Errorf("exports %x, want %x", known[7], want)
	}
	if want := vec(fnBody(cat([]byte{0x03, 0x40}, countdown(0, 0), []byte{0x0C, 0x00, 0x0B, 0x0B})...)); !bytes.Equal(known[10], want) {
		t.Errorf("code %x, want %x", known[10], want)
	}
}

func TestInstrumentRefuses(t *testing.T) {
	module := func(code ...byte) []byte {
		return cat([]byte(header),
			sec(1, vec([]byte{0x60, 0x00, 0x00})),
			sec(3, vec(u32(0))),
			sec(10, vec(fnBody(code...))),
		)
	}
	tests := []struct {
		name string
		wasm []byte
		want error
	}{
		{"not wasm", []byte("#!/bin/sh"), ErrInvalid},
		{"truncated", sample()[:40], ErrInvalid},
		{"the reserved import", cat([]byte(header), sec(1, vec(tickFuncType)),
			sec(2, vec(cat(str(ImportModule), str(ImportName), []byte{0x00}, u32(0))))), ErrReservedImport},
		// Indices the rewrite gives to what it adds: invalid before, they
		// would be valid after, so they are refused.
		{"global.set of the counter's index", module(0x41, 0x00, 0x24, 0x00, 0x0B), ErrInvalid},
		{"call of the tick's index", module(0x10, 0x01, 0x0B), ErrInvalid},
		{"an unsupported instruction", module(0x06, 0x40, 0x0B, 0x0B), ErrInvalid},
		{"a body longer than its code", module(0x01, 0x0B, 0x01), ErrInvalid},
		{"sections out of order", cat([]byte(header), sec(3, vec()), sec(1, vec())), ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Instrument(tc.wasm); !errors.Is(err, tc.want) {
				t.Errorf("Instrument: %v, want %v", err, tc.want)
			}
		})
	}
	// What Instrument makes imports the tick, so it is never instrumented twice.
	out, err := Instrument(sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Instrument(out); !errors.Is(err, ErrReservedImport) {
		t.Errorf("instrumenting twice: %v", err)
	}
}

func TestOpensWithLoop(t *testing.T) {
	tests := []struct {
		code []byte
		want bool
	}{
		{[]byte{0x03, 0x40}, true},
		{[]byte{0x23, 0x00, 0x21, 0x01, 0x02, 0x40, 0x03, 0x40}, true}, // Go's prologue
		{[]byte{0x41, 0x01, 0x04, 0x40, 0x03, 0x40}, false},            // an if may skip the loop
		{[]byte{0x10, 0x00, 0x03, 0x40}, false},                        // a call before it
		{[]byte{0x0C, 0x00, 0x03, 0x40}, false},                        // a branch before it
		{[]byte{0x01, 0x0B}, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := opensWithLoop(tc.code); got != tc.want {
			t.Errorf("%x: %v, want %v", tc.code, got, tc.want)
		}
	}
}
