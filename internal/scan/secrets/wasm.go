package secrets

import (
	"bytes"
	"errors"
	"fmt"
)

// MaxModule bounds the module DataSegments reads (the registry's cap).
const MaxModule = 64 << 20

var errBadModule = errors.New("not a WebAssembly module")

// DataSegments returns the bytes of every data segment of a WebAssembly
// module, one after the other: what the module's memory starts with,
// where its string constants are. Only the sections' framing and the data
// section are read, every length checked against what is left; written
// by hand because no parser the project uses exposes a module's data.
//
// A component (the component model's binary, what componentize-js and
// wasm32-wasip2 toolchains write) has no data section of its own: its core
// modules, and those of the components nested in it, are read in turn.
func DataSegments(wasm []byte) ([]byte, error) {
	if len(wasm) > MaxModule {
		return nil, fmt.Errorf("module of %d bytes: over %d", len(wasm), MaxModule)
	}
	return dataSegments(wasm, 0)
}

// maxNesting bounds how deep components nested in components are read.
const maxNesting = 8

func dataSegments(wasm []byte, depth int) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, errBadModule
	}
	// A module's data section (11) holds its segments; a component's core
	// modules (1) and nested components (4) hold theirs.
	component := bytes.Equal(wasm[4:8], []byte("\x0d\x00\x01\x00"))
	if component && depth >= maxNesting {
		return nil, fmt.Errorf("components nested deeper than %d: %w", maxNesting, errBadModule)
	}
	r := reader{b: wasm[8:]}
	var out []byte
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.take(int(size))
		if err != nil {
			return nil, err
		}
		var segs []byte
		switch {
		case component && (id == 1 || id == 4):
			segs, err = dataSegments(body, depth+1)
		case !component && id == 11:
			segs, err = dataSection(body)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, segs...)
	}
	return out, nil
}

// dataSection reads the segments of a data section's body.
func dataSection(body []byte) ([]byte, error) {
	r := reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	var out []byte
	for range n {
		flags, err := r.u32()
		if err != nil {
			return nil, err
		}
		switch flags {
		case 0: // active, memory 0, offset expression
			if err := r.skipExpr(); err != nil {
				return nil, err
			}
		case 1: // passive
		case 2: // active, memory index, offset expression
			if _, err := r.u32(); err != nil {
				return nil, err
			}
			if err := r.skipExpr(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("data segment flags %d: %w", flags, errBadModule)
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		seg, err := r.take(int(size))
		if err != nil {
			return nil, err
		}
		out = append(out, seg...)
		out = append(out, 0) // segments never run into each other
	}
	return out, nil
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errBadModule
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errBadModule
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errBadModule
}

// skipExpr skips a constant expression: instructions up to the end
// opcode (0x0b). Only what an offset may hold is accepted: i32.const,
// i64.const (a signed LEB128) and global.get (an index).
func (r *reader) skipExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b:
			return nil
		case 0x41, 0x42, 0x23: // i32.const, i64.const, global.get
			for i := 0; ; i++ {
				c, err := r.byte()
				if err != nil {
					return err
				}
				if c&0x80 == 0 {
					break
				}
				if i >= 10 {
					return errBadModule
				}
			}
		default:
			return fmt.Errorf("offset opcode %#x: %w", op, errBadModule)
		}
	}
}
