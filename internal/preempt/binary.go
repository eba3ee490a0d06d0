package preempt

import "errors"

var (
	errEOF      = errors.New("unexpected end")
	errLEB      = errors.New("malformed integer")
	errTrailing = errors.New("trailing bytes")
)

// reader decodes the WebAssembly binary format from a byte slice.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) done() bool { return r.pos >= len(r.b) }

func (r *reader) end() error {
	if !r.done() {
		return invalidf("%v", errTrailing)
	}
	return nil
}

func (r *reader) rest() []byte { return r.b[r.pos:] }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, invalidf("%v", errEOF)
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.pos {
		return nil, invalidf("%v", errEOF)
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

// vecBytes reads a length-prefixed byte string.
func (r *reader) vecBytes() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)-r.pos) {
		return nil, invalidf("%v", errEOF)
	}
	return r.bytes(int(n))
}

// u32 reads an unsigned LEB128 of at most 5 bytes that fits 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, invalidf("%v", errLEB)
			}
			return uint32(v), nil
		}
	}
	return 0, invalidf("%v", errLEB)
}

func (r *reader) skipU32s(n int) error {
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// skipLEB moves past a LEB128 of at most max bytes; the engine checks its
// value.
func (r *reader) skipLEB(max int) error {
	for range max {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return invalidf("%v", errLEB)
}

// skipBlockType: the empty type (0x40), a value type (one byte, a negative
// LEB), or a type index (a non-negative 33-bit LEB).
func (r *reader) skipBlockType() error { return r.skipLEB(5) }

// skipMemarg: alignment (bit 6 says a memory index follows), offset.
func (r *reader) skipMemarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return r.skipLEB(10)
}

// skipLimits: flags (bit 0: a maximum follows), minimum, maximum.
func (r *reader) skipLimits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags > 7 {
		return invalidf("limits flags %d", flags)
	}
	if err := r.skipLEB(10); err != nil {
		return err
	}
	if flags&1 != 0 {
		return r.skipLEB(10)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
