package aegis

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Request meta is parsed, and response meta written, by hand for the
// shapes the host produces, because of what code costs inside the sandbox.
// So that a timeout can stop a guest in a loop, the runtime checks for
// termination at every loop header, and Go compiles every jump to a basic
// block other than the next one as a branch back to its function's
// dispatch loop: each taken jump (a loop iteration, a skipped if, a failed
// case) and each call leaves the machine code for a check costing about
// 30 ns. encoding/json's reflection costs about 100 µs per invocation that
// way; a byte-at-a-time scanner about five checks per byte. So the scanner
// below skips eight plain bytes per step with branch-free arithmetic, and
// the strings it returns share the memory of the document instead of
// being copied (an allocation is dozens of checks). Anything the fast path
// does not expect falls back to encoding/json, which stays the reference
// (FuzzParseMeta checks they agree).

// decodeMeta parses the request meta document. The strings of the result
// share b's memory, so b must never be written to afterwards.
func decodeMeta(b []byte) (requestMeta, error) {
	var m requestMeta
	if parseMeta(b, &m) {
		return m, nil
	}
	m = requestMeta{}
	err := json.Unmarshal(b, &m)
	return m, err
}

// parseMeta is the fast path: it reports false, leaving m in any state,
// on anything but a flat object of the known fields with plain values.
func parseMeta(b []byte, m *requestMeta) bool {
	s := &scanner{b: b}
	if !s.byte('{') {
		return false
	}
	var seen uint16
	if !s.byte('}') {
		for {
			key, ok := s.str()
			if !ok || !s.byte(':') {
				return false
			}
			var bit uint16
			switch key {
			case "kind":
				bit = 1 << 0
				m.Kind, ok = s.str()
			case "request_id":
				bit = 1 << 1
				m.RequestID, ok = s.str()
			case "method":
				bit = 1 << 2
				m.Method, ok = s.str()
			case "path":
				bit = 1 << 3
				m.Path, ok = s.str()
			case "params":
				bit = 1 << 4
				m.Params, ok = s.strMap()
			case "query":
				bit = 1 << 5
				m.Query, ok = s.listMap()
			case "headers":
				bit = 1 << 6
				m.Headers, ok = s.listMap()
			case "topic":
				bit = 1 << 7
				m.Topic, ok = s.str()
			case "key":
				bit = 1 << 8
				m.Key, ok = s.str()
			case "operation":
				bit = 1 << 9
				m.Operation, ok = s.str()
			case "attempt":
				bit = 1 << 10
				m.Attempt, ok = s.int()
			case "hop":
				bit = 1 << 11
				m.Hop, ok = s.int()
			default:
				// Including "identity": nested values of any shape, which
				// encoding/json decodes.
				return false
			}
			// A repeated field merges maps in encoding/json; leave that to it.
			if !ok || seen&bit != 0 {
				return false
			}
			seen |= bit
			if s.byte(',') {
				continue
			}
			if s.byte('}') {
				break
			}
			return false
		}
	}
	s.space()
	return s.i == len(s.b)
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c after optional white space. The host writes no white
// space, so c is looked for first without the call to space.
func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a JSON string. Escapes other than the simple ones and \u
// outside the surrogate range, control characters and invalid UTF-8 all
// report false. Without escapes the result shares s.b's memory.
func (s *scanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	// Most keys and many values are shorter than eight bytes: one word
	// finds their end, on a path without taken jumps.
	if s.i+8 <= len(s.b) {
		if m := special(binary.LittleEndian.Uint64(s.b[s.i:])); m != 0 {
			if end := s.i + bits.TrailingZeros64(m)>>3; s.b[end] == '"' {
				s.i = end + 1
				return unsafe.String(unsafe.SliceData(s.b[start:end]), end-start), true
			}
		}
	}
	var out []byte // only allocated once an escape is seen
	for {
		for s.i+8 <= len(s.b) {
			if m := special(binary.LittleEndian.Uint64(s.b[s.i:])); m != 0 {
				s.i += bits.TrailingZeros64(m) >> 3
				break
			}
			s.i += 8
		}
		if s.i >= len(s.b) {
			return "", false
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if out != nil {
				return string(append(out, raw...)), true
			}
			return unsafe.String(unsafe.SliceData(raw), len(raw)), true
		case c < 0x20:
			return "", false
		case c == '\\':
			out = append(out, s.b[start:s.i]...)
			r, ok := s.escape()
			if !ok {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			start = s.i
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			s.i += size
		default:
			s.i++
		}
	}
}

// Bytes of eight-byte words, for the branch-free tests below.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// special returns a word whose lowest set bit is the top bit of the first
// (least significant) byte of x that a string scanner must look at: a
// quote, a backslash, a control character or a byte of a multi-byte UTF-8
// sequence. It is zero when all eight bytes are plain. Bits above the
// first such byte may be spurious (borrows propagate upwards), which is
// why only the lowest one is used.
func special(x uint64) uint64 {
	q := x ^ (lsbs * '"')
	bs := x ^ (lsbs * '\\')
	return ((q-lsbs)&^q | (bs-lsbs)&^bs | (x - lsbs*0x20) | x) & msbs
}

// escape reads the escape sequence at s.i (which is a backslash).
func (s *scanner) escape() (rune, bool) {
	if s.i+1 >= len(s.b) {
		return 0, false
	}
	c := s.b[s.i+1]
	s.i += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	case 'u':
		if s.i+4 > len(s.b) {
			return 0, false
		}
		v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
		if err != nil || (v >= 0xD800 && v <= 0xDFFF) {
			return 0, false
		}
		s.i += 4
		return rune(v), true
	}
	return 0, false
}

// int reads a small non-negative or negative integer in plain JSON form.
func (s *scanner) int() (int, bool) {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 9 || (n > 1 && s.b[digits] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	return v, err == nil
}

func (s *scanner) strMap() (map[string]string, bool) {
	if !s.byte('{') {
		return nil, false
	}
	m := map[string]string{}
	if s.byte('}') {
		return m, true
	}
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') {
			return nil, false
		}
		if m[k], ok = s.str(); !ok {
			return nil, false
		}
		if s.byte(',') {
			continue
		}
		return m, s.byte('}')
	}
}

func (s *scanner) listMap() (map[string][]string, bool) {
	if !s.byte('{') {
		return nil, false
	}
	m := map[string][]string{}
	if s.byte('}') {
		return m, true
	}
	// One backing array holds the values of every list, each list a
	// capacity-limited window of it, so a header costs no allocation of
	// its own. Appending to a list copies it rather than overwrite the
	// next one, and a window taken before the array grows keeps pointing
	// at the old array, whose values never change.
	vals := make([]string, 0, 8)
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') || !s.byte('[') {
			return nil, false
		}
		first := len(vals)
		if !s.byte(']') {
			for {
				v, ok := s.str()
				if !ok {
					return nil, false
				}
				vals = append(vals, v)
				if s.byte(',') {
					continue
				}
				if !s.byte(']') {
					return nil, false
				}
				break
			}
		}
		m[k] = vals[first:len(vals):len(vals)]
		if s.byte(',') {
			continue
		}
		return m, s.byte('}')
	}
}

// encodeResponseMeta writes {"status":N,"headers":{...}} exactly as
// encoding/json would read it back.
func encodeResponseMeta(status int, headers map[string]string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if len(headers) > 0 {
		b = append(b, `,"headers":{`...)
		first := true
		for k, v := range headers {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONString quotes s as JSON, replacing invalid UTF-8 with U+FFFD
// as encoding/json does. Plain bytes are skipped eight at a time.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) {
			if m := special(load64(s, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, s[start:i]...)
				b = append(b, '\\', c)
				start = i + 1
			case c < 0x20:
				b = append(b, s[start:i]...)
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			start = i + 1
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// load64 reads s[i:i+8] as a little-endian word (one load in WebAssembly:
// the compiler combines the byte loads).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
