// Package preempt rewrites a WebAssembly module so that its compiled code
// hands control back to the host at regular intervals, cheaply: a countdown
// in a global of the module's own is decremented at every loop header and
// at the entry of every function that could reach a call before a loop
// header, and when it reaches zero the code calls an imported host function
// (ImportModule.ImportName), which returns the next countdown or ends the
// call.
//
// Why not the engine's own mechanism: wazero's WithCloseOnContextDone makes
// every loop header leave machine code for Go and come back (about 30 ns),
// and a Go guest passes thousands of loop headers per request, so Go
// functions ran several times slower than the same code in C. The
// countdown costs a load, a store and a branch a loop header and leaves
// machine code once every Interval of them. The host call is not an
// optimisation: a guest spinning without ever returning to Go would also
// hold off the garbage collector's stop-the-world, and with it the timer
// meant to stop the guest.
//
// Why a rewriter of our own: no maintained Go library decodes and
// re-encodes function bodies (wabin keeps them as bytes), and the rewrite
// is small: it walks every instruction once, inserts the countdown, and
// shifts the function indices that follow the one import it adds. It sits
// outside the trusted part of the sandbox: the engine validates and
// compiles what it returns like any other module, so a bug here can make a
// module fail to deploy or preempt too seldom, never reach past the
// sandbox. It refuses modules that already name the index of the global or
// function it adds, since such a reference, invalid before the rewrite,
// would let a module reset its own countdown.
//
// The package imports nothing but the standard library.
package preempt

import (
	"errors"
	"fmt"
	"strings"
)

// The import every rewritten module has: () -> (i32), returning the next
// countdown.
const (
	ImportModule = "aegis_preempt"
	ImportName   = "tick"
)

// Interval is the countdown the global starts from, and what the host
// function should return: the number of loop headers and function entries
// between two calls to the host. At a nanosecond or two a header, a guest
// spinning in a tight loop reaches the host every few tens of
// microseconds, so a timeout ends it within that of its deadline, and the
// host call's cost disappears in the work between two of them.
const Interval = 1 << 14

// ErrInvalid wraps every refusal: the bytes are not a module this package
// can rewrite (malformed, or using an instruction outside the features
// the engine supports).
var ErrInvalid = errors.New("cannot instrument module")

// ErrReservedImport: the module imports from ImportModule itself.
var ErrReservedImport = errors.New("module imports from the reserved module " + ImportModule)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Section ids.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
	secData     = 11
)

// order is where each known section must appear (the tag section, 13,
// sits between memory and global); a section the rewrite adds is placed by
// it.
var order = map[byte]int{
	1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13,
}

type section struct {
	id   byte
	name string // custom sections
	body []byte
}

// module is what the rewrite needs to know about the input.
type module struct {
	reserved        bool
	sections        []section
	importedFuncs   uint32
	importedGlobals uint32
	definedFuncs    uint32
	definedGlobals  uint32
	types           uint32
}

// Instrument returns wasm rewritten with the countdown. The input is not
// modified.
func Instrument(wasm []byte) ([]byte, error) {
	m, err := parse(wasm, false)
	if err != nil {
		return nil, err
	}
	return m.rewrite()
}

// parse splits wasm into sections and counts what the rewrite needs;
// imports from ImportModule are refused unless reserved allows them (to
// read back a rewritten module).
func parse(wasm []byte, reserved bool) (*module, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, invalidf("not a WebAssembly 1.0 binary")
	}
	r := &reader{b: wasm, pos: 8}
	m := &module{reserved: reserved}
	last := 0
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		body, err := r.vecBytes()
		if err != nil {
			return nil, invalidf("section %d: %v", id, err)
		}
		s := section{id: id, body: body}
		if id == secCustom {
			nr := &reader{b: body}
			name, err := nr.vecBytes()
			if err != nil {
				return nil, invalidf("custom section name: %v", err)
			}
			s.name = string(name)
		} else {
			o, ok := order[id]
			if !ok {
				return nil, invalidf("unknown section id %d", id)
			}
			if o <= last {
				return nil, invalidf("section %d out of order or repeated", id)
			}
			last = o
		}
		m.sections = append(m.sections, s)
		if err := m.count(s); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// count reads the numbers of types, imports, functions and globals.
func (m *module) count(s section) error {
	r := &reader{b: s.body}
	var err error
	switch s.id {
	case secType:
		m.types, err = r.u32()
	case secFunction:
		m.definedFuncs, err = r.u32()
	case secGlobal:
		m.definedGlobals, err = r.u32()
	case secImport:
		err = m.countImports(r)
	}
	if errors.Is(err, ErrReservedImport) {
		return err
	}
	if err != nil {
		return invalidf("section %d: %v", s.id, err)
	}
	return nil
}

func (m *module) countImports(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		mod, err := r.vecBytes()
		if err != nil {
			return err
		}
		if _, err := r.vecBytes(); err != nil {
			return err
		}
		if string(mod) == ImportModule && !m.reserved {
			return ErrReservedImport
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0x00: // function: type index
			m.importedFuncs++
			_, err = r.u32()
		case 0x01: // table: reference type, limits
			if _, err = r.byte(); err == nil {
				err = r.skipLimits()
			}
		case 0x02: // memory: limits
			err = r.skipLimits()
		case 0x03: // global: value type, mutability
			m.importedGlobals++
			_, err = r.bytes(2)
		case 0x04: // tag: attribute, type index
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			return fmt.Errorf("unknown import kind %d", kind)
		}
		if err != nil {
			return err
		}
	}
	return r.end()
}

// rewrite builds the instrumented module.
func (m *module) rewrite() ([]byte, error) {
	oldFuncs := uint64(m.importedFuncs) + uint64(m.definedFuncs)
	oldGlobals := uint64(m.importedGlobals) + uint64(m.definedGlobals)
	if oldFuncs >= 1<<32-1 || oldGlobals >= 1<<32-1 || m.types >= 1<<32-1 {
		return nil, invalidf("too many functions, globals or types")
	}
	rw := &rewriter{
		oldFuncs:   uint32(oldFuncs),
		oldGlobals: uint32(oldGlobals),
		tick:       m.importedFuncs,
		counter:    uint32(oldGlobals),
		tickType:   m.types,
	}
	added := map[byte]bool{}
	out := []byte("\x00asm\x01\x00\x00\x00")
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// addMissing emits, before a section of order o, the sections the
	// rewrite needs that the module does not have.
	addMissing := func(o int) {
		for _, id := range []byte{secType, secImport, secGlobal} {
			if order[id] < o && !added[id] {
				added[id] = true
				emit(id, rw.newSection(id))
			}
		}
	}
	for _, s := range m.sections {
		if s.id == secCustom {
			if dropCustom(s.name) {
				continue
			}
			body := s.body
			if s.name == "name" {
				b, err := rw.nameSection(s.body)
				if err != nil {
					// Names only label stack traces: a section we cannot
					// read is dropped rather than refused.
					continue
				}
				body = b
			}
			emit(secCustom, body)
			continue
		}
		addMissing(order[s.id])
		body, err := rw.section(s)
		if err != nil {
			return nil, err
		}
		if s.id == secType || s.id == secImport || s.id == secGlobal {
			added[s.id] = true
		}
		emit(s.id, body)
	}
	addMissing(order[secData] + 1)
	return out, nil
}

// dropCustom: sections whose contents point at code offsets the rewrite
// moves; kept, they would describe the wrong instructions.
func dropCustom(name string) bool {
	return strings.HasPrefix(name, ".debug_") || name == "sourceMappingURL" || name == "external_debug_info"
}

// rewriter holds the index arithmetic of the rewrite.
type rewriter struct {
	oldFuncs, oldGlobals uint32
	tick                 uint32 // index of the added import; old functions from here on move up by one
	counter              uint32 // index of the added global
	tickType             uint32 // index of the added type
}

func (rw *rewriter) funcIndex(i uint32) (uint32, error) {
	if i >= rw.oldFuncs {
		return 0, invalidf("function index %d out of range", i)
	}
	if i >= rw.tick {
		return i + 1, nil
	}
	return i, nil
}

// newSection is the whole body of a section the module lacks.
func (rw *rewriter) newSection(id byte) []byte {
	body := appendU32(nil, 1)
	switch id {
	case secType:
		return append(body, tickFuncType...)
	case secImport:
		return rw.appendImport(body)
	default: // secGlobal
		return rw.appendGlobal(body)
	}
}

// tickFuncType is the type () -> (i32).
var tickFuncType = []byte{0x60, 0x00, 0x01, 0x7F}

func (rw *rewriter) appendImport(b []byte) []byte {
	b = appendName(b, ImportModule)
	b = appendName(b, ImportName)
	b = append(b, 0x00)
	return appendU32(b, rw.tickType)
}

func (rw *rewriter) appendGlobal(b []byte) []byte {
	b = append(b, 0x7F, 0x01, 0x41) // i32, mutable, i32.const
	b = appendS64(b, Interval)
	return append(b, 0x0B)
}

// section rewrites one known section.
func (rw *rewriter) section(s section) ([]byte, error) {
	r := &reader{b: s.body}
	var out []byte
	var err error
	switch s.id {
	case secType:
		out, err = appendVecPlusOne(r, tickFuncType)
	case secImport:
		out, err = appendVecPlusOne(r, rw.appendImport(nil))
	case secGlobal:
		out, err = rw.globals(r)
	case secExport:
		out, err = rw.exports(r)
	case secStart:
		var f uint32
		if f, err = r.u32(); err == nil {
			if f, err = rw.funcIndex(f); err == nil {
				out, err = appendU32(nil, f), r.end()
			}
		}
	case secElement:
		out, err = rw.elements(r)
	case secCode:
		out, err = rw.code(r)
	default:
		return s.body, nil
	}
	if err != nil {
		return nil, fmt.Errorf("section %d: %w", s.id, err)
	}
	return out, nil
}

// appendVecPlusOne copies a vector with one more element, extra, at its end.
func appendVecPlusOne(r *reader, extra []byte) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if n == 1<<32-1 {
		return nil, invalidf("vector too long")
	}
	out := appendU32(nil, n+1)
	out = append(out, r.rest()...)
	return append(out, extra...), nil
}

func (rw *rewriter) globals(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n+1)
	for range n {
		t, err := r.bytes(2) // value type, mutability
		if err != nil {
			return nil, err
		}
		out = append(out, t...)
		if out, err = rw.expr(r, out, false); err != nil {
			return nil, err
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return rw.appendGlobal(out), nil
}

func (rw *rewriter) exports(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		name, err := r.vecBytes()
		if err != nil {
			return nil, err
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		switch kind {
		case 0x00:
			if idx, err = rw.funcIndex(idx); err != nil {
				return nil, err
			}
		case 0x03:
			if idx >= rw.oldGlobals {
				return nil, invalidf("exported global %d out of range", idx)
			}
		}
		out = appendU32(out, uint32(len(name)))
		out = append(out, name...)
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	return out, r.end()
}

// elements rewrites the function indices of element segments, in each of
// the eight encodings the reference-types proposal defines: bit 0 passive
// or declarative, bit 1 an explicit table index (active) or declarative,
// bit 2 expressions instead of function indices.
func (rw *rewriter) elements(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		flags, err := r.u32()
		if err != nil {
			return nil, err
		}
		if flags > 7 {
			return nil, invalidf("element segment flags %d", flags)
		}
		out = appendU32(out, flags)
		if flags&3 == 2 { // active with an explicit table index
			t, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = appendU32(out, t)
		}
		if flags&1 == 0 { // active: offset expression
			if out, err = rw.expr(r, out, false); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // element kind or reference type
			k, err := r.byte()
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		count, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = appendU32(out, count)
		for range count {
			if flags&4 != 0 {
				out, err = rw.expr(r, out, false)
			} else {
				var f uint32
				if f, err = r.u32(); err == nil {
					if f, err = rw.funcIndex(f); err == nil {
						out = appendU32(out, f)
					}
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, r.end()
}

// code rewrites every function body.
func (rw *rewriter) code(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	var body []byte
	for i := range n {
		b, err := r.vecBytes()
		if err != nil {
			return nil, err
		}
		body, err = rw.body(b, body[:0])
		if err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, r.end()
}

// maxLocals is the engine's own limit on a function's locals.
const maxLocals = 50000

// body rewrites one function: its locals unchanged, a countdown at entry
// unless every path to a call passes a loop header first, and its
// instructions.
func (rw *rewriter) body(b, out []byte) ([]byte, error) {
	r := &reader{b: b}
	groups, err := r.u32()
	if err != nil {
		return nil, err
	}
	var total uint64
	for range groups {
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		if total += uint64(c); total > maxLocals {
			return nil, invalidf("too many locals")
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
	}
	out = append(out, b[:r.pos]...)
	if !opensWithLoop(r.rest()) {
		out = rw.appendCountdown(out)
	}
	if out, err = rw.expr(r, out, true); err != nil {
		return nil, err
	}
	return out, r.end()
}

// opensWithLoop reports whether code reaches a loop opcode through
// straight-line instructions only: no call, branch, return or if before
// it. Control then passes that loop's countdown before anything that
// could repeat or call, so a countdown at entry would only count the same
// thing twice. Go's compiler opens every function this way (a stack
// pointer load, a block, then the loop its jumps go through), which halves
// the countdowns a Go call pays.
func opensWithLoop(code []byte) bool {
	r := &reader{b: code}
	for !r.done() {
		op, _ := r.byte()
		switch {
		case op == 0x03:
			return true
		case op == 0x02: // block
			if r.skipBlockType() != nil {
				return false
			}
		case op == 0x23 || op == 0x24: // global.get, global.set
			if _, err := r.u32(); err != nil {
				return false
			}
		case op == 0x01, op == 0x1A, op == 0x1B, // nop, drop, select
			op >= 0x20 && op <= 0x22, // local access
			op >= 0x41 && op <= 0x44, // constants
			op >= 0x45 && op <= 0xC4: // numeric
			if skipImmediates(r, op) != nil {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// appendCountdown appends:
//
//	global.get $c  i32.const 1  i32.sub  global.set $c
//	global.get $c  i32.eqz  if  call $tick  global.set $c  end
//
// Decrementing first lets the compiler keep the new value in a register
// for the test (one load and one store a countdown). It leaves the operand
// stack as it found it, so it fits anywhere an instruction may start, loop
// parameters on the stack included.
func (rw *rewriter) appendCountdown(out []byte) []byte {
	out = append(out, 0x23)
	out = appendU32(out, rw.counter)
	out = append(out, 0x41, 0x01, 0x6B, 0x24)
	out = appendU32(out, rw.counter)
	out = append(out, 0x23)
	out = appendU32(out, rw.counter)
	out = append(out, 0x45, 0x04, 0x40, 0x10)
	out = appendU32(out, rw.tick)
	out = append(out, 0x24)
	out = appendU32(out, rw.counter)
	return append(out, 0x0B)
}

// nameSection shifts the function indices of the name section's function,
// local and label names; other subsections are copied.
func (rw *rewriter) nameSection(body []byte) ([]byte, error) {
	r := &reader{b: body}
	name, err := r.vecBytes()
	if err != nil {
		return nil, err
	}
	out := appendName(nil, string(name))
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		sub, err := r.vecBytes()
		if err != nil {
			return nil, err
		}
		if id >= 1 && id <= 3 {
			if sub, err = rw.nameMap(sub, id != 1); err != nil {
				return nil, err
			}
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	return out, nil
}

// nameMap rewrites a map from function index to a name or, when indirect,
// to a map of names.
func (rw *rewriter) nameMap(b []byte, indirect bool) ([]byte, error) {
	r := &reader{b: b}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		f, err := r.u32()
		if err != nil {
			return nil, err
		}
		if f, err = rw.funcIndex(f); err != nil {
			return nil, err
		}
		out = appendU32(out, f)
		start := r.pos
		if indirect {
			m, err := r.u32()
			if err != nil {
				return nil, err
			}
			for range m {
				if _, err := r.u32(); err != nil {
					return nil, err
				}
				if _, err := r.vecBytes(); err != nil {
					return nil, err
				}
			}
		} else if _, err := r.vecBytes(); err != nil {
			return nil, err
		}
		out = append(out, r.b[start:r.pos]...)
	}
	return out, r.end()
}
