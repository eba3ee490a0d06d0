package aegis

import (
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Request meta is parsed by hand for the shapes the host produces,
// because of what code costs inside the sandbox. Go's WebAssembly port
// compiles every function as a loop around a jump table: each call and
// each taken jump (a loop iteration, a skipped if, a failed case) goes
// back through the loop header, where the sandbox also counts towards
// preemption, and through the table. An allocation is dozens of such
// jumps, and feeds the garbage collector the guest runs itself.
// encoding/json's reflection costs tens of microseconds per invocation
// that way; a byte-at-a-time scanner about five jumps per byte. So the
// scanner below skips plain bytes eight at a time with branch-free
// arithmetic, tells member names apart by one word compare, and returns
// strings that share the memory of the document instead of copies. What
// it does not decode itself (an identity's claims, a member it does not
// know) it hands to encoding/json alone; anything it does not expect
// sends the whole document there. encoding/json stays the reference:
// FuzzParseMeta and FuzzDecodeRequest check that they agree.

// decodeMeta parses the request meta document. The strings of the result
// share b's memory, so b must never be written to afterwards.
func decodeMeta(b []byte) (requestMeta, error) {
	m, _, err := decodeRequest(b)
	return m, err
}

// decodeRequest is decodeMeta that also returns the Request the fast path
// allocated together with the header and query values (see
// requestValues), for the handler to be given; nil if there was none.
func decodeRequest(b []byte) (requestMeta, *Request, error) {
	var m requestMeta
	s := scanner{b: b, delegate: true}
	if s.meta(&m) {
		return m, s.request(), nil
	}
	m, err := decodeMetaJSON(b)
	return m, nil, err
}

// decodeMetaJSON is the slow path. It is a function of its own so that the
// fast path's requestMeta stays on the stack: the pointer encoding/json
// takes makes its target a heap allocation.
func decodeMetaJSON(b []byte) (requestMeta, error) {
	var m requestMeta
	err := json.Unmarshal(b, &m)
	return m, err
}

// The names of the members the fast path knows, as name returns them: the
// first eight bytes of the name as a little-endian word, zero-padded. A
// name of eight bytes or more is told apart by its length as well.
const (
	nameKind      = uint64('k') | 'i'<<8 | 'n'<<16 | 'd'<<24
	nameRequestID = uint64('r') | 'e'<<8 | 'q'<<16 | 'u'<<24 | 'e'<<32 | 's'<<40 | 't'<<48 | '_'<<56 // "request_" + "id"
	nameMethod    = uint64('m') | 'e'<<8 | 't'<<16 | 'h'<<24 | 'o'<<32 | 'd'<<40
	namePath      = uint64('p') | 'a'<<8 | 't'<<16 | 'h'<<24
	nameParams    = uint64('p') | 'a'<<8 | 'r'<<16 | 'a'<<24 | 'm'<<32 | 's'<<40
	nameQuery     = uint64('q') | 'u'<<8 | 'e'<<16 | 'r'<<24 | 'y'<<32
	nameHeaders   = uint64('h') | 'e'<<8 | 'a'<<16 | 'd'<<24 | 'e'<<32 | 'r'<<40 | 's'<<48
	nameTopic     = uint64('t') | 'o'<<8 | 'p'<<16 | 'i'<<24 | 'c'<<32
	nameKey       = uint64('k') | 'e'<<8 | 'y'<<16
	nameOperation = uint64('o') | 'p'<<8 | 'e'<<16 | 'r'<<24 | 'a'<<32 | 't'<<40 | 'i'<<48 | 'o'<<56 // "operatio" + "n"
	nameAttempt   = uint64('a') | 't'<<8 | 't'<<16 | 'e'<<24 | 'm'<<32 | 'p'<<40 | 't'<<48
	nameHop       = uint64('h') | 'o'<<8 | 'p'<<16
	nameIdentity  = uint64('i') | 'd'<<8 | 'e'<<16 | 'n'<<24 | 't'<<32 | 'i'<<40 | 't'<<48 | 'y'<<56
)

// parseMeta is the fast path: it reports false, leaving m in any state,
// on anything but an object of the known members with plain values. It
// never uses encoding/json: an identity or an unknown member makes it
// report false.
func parseMeta(b []byte, m *requestMeta) bool {
	s := scanner{b: b}
	return s.meta(m)
}

func (s *scanner) meta(m *requestMeta) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return s.end()
	}
	var seen uint16 // a bit per member, in the order of the cases below
	for {
		w, k, ok := s.name()
		if !ok || !s.byte(':') {
			return false
		}
		var bit uint16
		switch w {
		case nameKind:
			bit = 1 << 0
			m.Kind, ok = s.str()
		case nameRequestID:
			// The first eight bytes matched: compare the rest only (a
			// whole-string compare is a call).
			if len(k) != len("request_id") || k[8:] != "id" {
				return false
			}
			bit = 1 << 1
			m.RequestID, ok = s.str()
		case nameMethod:
			bit = 1 << 2
			m.Method, ok = s.str()
		case namePath:
			bit = 1 << 3
			m.Path, ok = s.str()
		case nameParams:
			bit = 1 << 4
			m.Params, ok = s.strMap()
		case nameQuery:
			bit = 1 << 5
			m.Query, ok = s.listMap()
		case nameHeaders:
			bit = 1 << 6
			m.Headers, ok = s.listMap()
		case nameTopic:
			bit = 1 << 7
			m.Topic, ok = s.str()
		case nameKey:
			bit = 1 << 8
			m.Key, ok = s.str()
		case nameOperation:
			if len(k) != len("operation") || k[8] != 'n' {
				return false
			}
			bit = 1 << 9
			m.Operation, ok = s.str()
		case nameAttempt:
			bit = 1 << 10
			m.Attempt, ok = s.int()
		case nameHop:
			bit = 1 << 11
			m.Hop, ok = s.int()
		case nameIdentity:
			if !s.delegate || len(k) != len("identity") {
				return false
			}
			bit = 1 << 12
			m.Identity, ok = s.identityValue()
		default:
			// A member this SDK does not know, which the host may add
			// (docs/abi.md): ignored, as encoding/json ignores it.
			if !s.delegate || !s.unknownValue(k) {
				return false
			}
		}
		// A repeated member merges maps in encoding/json; leave that to it.
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		return s.byte('}') && s.end()
	}
}

type scanner struct {
	b []byte
	i int
	// vals is where list maps (query, headers) append their values, in
	// rv's array until that is full. rv is allocated by the first list
	// map, and its Request is the one the handler gets.
	vals []string
	rv   *requestValues
	// delegate lets meta hand to encoding/json the values it does not
	// decode itself, the identity and members it does not know, instead
	// of reporting false.
	delegate bool
}

// requestValues is a Request and the array its first header and query
// values are kept in: one allocation instead of two.
type requestValues struct {
	req  Request
	vals [8]string
}

// request returns the Request allocated with the values, or nil.
func (s *scanner) request() *Request {
	if s.rv == nil {
		return nil
	}
	return &s.rv.req
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
// space, so c is looked for first, and white space is skipped out of line.
func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return s.byteAfterSpace(c)
}

func (s *scanner) byteAfterSpace(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// The members of an identity, as name returns them. All are shorter than
// eight bytes, so the zero padding tells them apart by length too.
const (
	nameScheme  = uint64('s') | 'c'<<8 | 'h'<<16 | 'e'<<24 | 'm'<<32 | 'e'<<40
	nameSubject = uint64('s') | 'u'<<8 | 'b'<<16 | 'j'<<24 | 'e'<<32 | 'c'<<40 | 't'<<48
	nameIssuer  = uint64('i') | 's'<<8 | 's'<<16 | 'u'<<24 | 'e'<<32 | 'r'<<40
	nameClaims  = uint64('c') | 'l'<<8 | 'a'<<16 | 'i'<<24 | 'm'<<32 | 's'<<40
)

// identityValue decodes the value of the identity member. Every
// authenticated request has one, so its plain members (scheme, subject,
// issuer) are read like the rest of the meta, and only the claims of a
// JWT, which have any shape, go to encoding/json: an API key, webhook or
// function caller costs no reflection at all. Anything else (null, a
// repeated or unknown member, a name in another case) hands the whole
// value to encoding/json, which checks it again in full, so a malformed
// one reports false and the whole document is left to it.
func (s *scanner) identityValue() (*Identity, bool) {
	start := s.i
	if id, ok := s.identityObject(); ok {
		return id, true
	}
	s.i = start
	if !s.skip(0) {
		return nil, false
	}
	var id *Identity
	if err := json.Unmarshal(s.b[start:s.i], &id); err != nil {
		return nil, false
	}
	return id, true
}

// identityObject is identityValue's fast path: an object of the known
// members, each at most once, with string values and claims that
// encoding/json accepts as a map.
func (s *scanner) identityObject() (*Identity, bool) {
	if !s.byte('{') {
		return nil, false
	}
	id := new(Identity)
	if s.byte('}') {
		return id, true
	}
	var seen uint8
	for {
		w, _, ok := s.name()
		if !ok || !s.byte(':') {
			return nil, false
		}
		var bit uint8
		switch w {
		case nameScheme:
			bit = 1 << 0
			id.Scheme, ok = s.str()
		case nameSubject:
			bit = 1 << 1
			id.Subject, ok = s.str()
		case nameIssuer:
			bit = 1 << 2
			id.Issuer, ok = s.str()
		case nameClaims:
			bit = 1 << 3
			start := s.i
			ok = s.skip(0) && json.Unmarshal(s.b[start:s.i], &id.Claims) == nil
		default:
			return nil, false
		}
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		if s.byte(',') {
			continue
		}
		return id, s.byte('}')
	}
}

// unknownValue passes over the value of a member named k that meta does
// not know, if encoding/json would ignore it too: it matches names
// regardless of case, with Unicode folding (the Kelvin sign is a k), so
// only a name without upper-case or non-ASCII letters can be none of the
// known ones. The value must be valid JSON, as the whole document must.
func (s *scanner) unknownValue(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	start := s.i
	return s.skip(0) && json.Valid(s.b[start:s.i])
}

// maxDepth bounds the nesting skip follows: deeper values are left to
// encoding/json rather than to a recursion the document controls.
const maxDepth = 64

// skip passes over one JSON value of any shape, so that its bytes can be
// handed on. It finds where the value ends; it does not check number and
// literal syntax, which the decoder the value is handed to does.
func (s *scanner) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.str()
		return ok
	case '{':
		return s.skipObject(depth)
	case '[':
		return s.skipArray(depth)
	}
	start := s.i
	for s.i < len(s.b) && !delimiter(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

func (s *scanner) skipObject(depth int) bool {
	s.i++ // '{'
	if s.byte('}') {
		return true
	}
	for {
		if _, ok := s.str(); !ok || !s.byte(':') || !s.skip(depth+1) {
			return false
		}
		if !s.byte(',') {
			return s.byte('}')
		}
	}
}

func (s *scanner) skipArray(depth int) bool {
	s.i++ // '['
	if s.byte(']') {
		return true
	}
	for {
		if !s.skip(depth + 1) {
			return false
		}
		if !s.byte(',') {
			return s.byte(']')
		}
	}
}

// delimiter reports whether c ends a number or a literal.
func delimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// end reports whether nothing but white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// name reads a member name and returns it with its first eight bytes as a
// zero-padded little-endian word, which the caller compares with constants
// instead of comparing strings (a call, or a jump per byte).
func (s *scanner) name() (uint64, string, bool) {
	start := s.i + 1 // after the quote, if str finds one
	k, ok := s.str()
	if !ok {
		return 0, "", false
	}
	// Without escapes, k is the document's bytes between start and the
	// closing quote, which str has checked hold no NUL: the word can be
	// read from the document and masked (a mask of all ones for eight
	// bytes or more, as a shift by 64 gives 0).
	if s.i-1-start == len(k) && start+8 <= len(s.b) {
		return le64(s.b[start:start+8]) & (1<<(8*min(len(k), 8)) - 1), k, true
	}
	return prefixWord(k), k, true
}

// prefixWord is the first eight bytes of k as name returns them, or 0,
// which is no known name, if one of them is a NUL byte (an escaped
// "\u0000"): it would read as padding, making "kind\u0000" look like
// "kind".
func prefixWord(k string) uint64 {
	var w uint64
	for i := 0; i < len(k) && i < 8; i++ {
		if k[i] == 0 {
			return 0
		}
		w |= uint64(k[i]) << (8 * i)
	}
	return w
}

// str reads a JSON string. Escapes other than the simple ones and \u
// outside the surrogate range, control characters and invalid UTF-8 all
// report false. Without escapes the result shares s.b's memory.
func (s *scanner) str() (string, bool) {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '"' {
		return s.strAfterSpace()
	}
	i++
	start := i
	// Skip plain bytes eight at a time: names and values are mostly
	// short, so this usually finds the closing quote in a step or two,
	// without a jump per byte.
	for i+8 <= len(b) {
		if m := special(le64(b[i : i+8])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			if b[i] == '"' {
				s.i = i + 1
				return unsafe.String(unsafe.SliceData(b[start:i]), i-start), true
			}
			break
		}
		i += 8
	}
	if i+8 > len(b) && len(b) >= 8 {
		// Fewer than eight bytes were left for a word of their own: the
		// document's last word, shifted so that the byte at i comes
		// first. The zeros shifted in count as special, so the step
		// stops at the end at the latest.
		i += bits.TrailingZeros64(special(le64(b[len(b)-8:])>>(8*(i+8-len(b))))) >> 3
		if i < len(b) && b[i] == '"' {
			s.i = i + 1
			return unsafe.String(unsafe.SliceData(b[start:i]), i-start), true
		}
	}
	s.i = i
	return s.strSlow(start)
}

// strAfterSpace is str where the string does not start at once: the host
// writes no white space, so this is out of the way of the common case.
func (s *scanner) strAfterSpace() (string, bool) {
	if !s.byteAfterSpace('"') {
		return "", false
	}
	return s.strSlow(s.i)
}

// strSlow finishes a string that str found to need more than a scan for
// its closing quote: escapes, multi-byte characters, or too close to the
// end of the document for word steps. The string began at start, and the
// bytes up to s.i are plain.
func (s *scanner) strSlow(start int) (string, bool) {
	var out []byte // only allocated once an escape is seen
	for {
		for s.i+8 <= len(s.b) {
			if m := special(le64(s.b[s.i : s.i+8])); m != 0 {
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

// le64 reads p[0:8] as a little-endian word: one load in WebAssembly, the
// compiler combines the byte loads. p must have at least 8 bytes.
func le64(p []byte) uint64 {
	_ = p[7]
	return uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 |
		uint64(p[4])<<32 | uint64(p[5])<<40 | uint64(p[6])<<48 | uint64(p[7])<<56
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

// int reads an integer of at most nine digits in plain JSON form (no
// fraction, no exponent, no leading zero), without strconv's conversion
// of the digits to a string.
func (s *scanner) int() (int, bool) {
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	digits := s.i
	v := 0
	for s.i < len(s.b) && s.b[s.i]-'0' <= 9 {
		v = v*10 + int(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 9 || (n > 1 && s.b[digits] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
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
	if s.rv == nil {
		s.rv = new(requestValues)
		s.vals = s.rv.vals[:0]
	}
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') || !s.byte('[') {
			return nil, false
		}
		// The list is read here rather than by a function of its own:
		// a call per header is a cost worth avoiding.
		first := len(s.vals)
		if !s.byte(']') {
			for {
				v, ok := s.str()
				if !ok {
					return nil, false
				}
				s.vals = append(s.vals, v)
				if !s.byte(',') {
					break
				}
			}
			if !s.byte(']') {
				return nil, false
			}
		}
		m[k] = s.vals[first:len(s.vals):len(s.vals)]
		if !s.byte(',') {
			return m, s.byte('}')
		}
	}
}
