package aegis

import (
	"strconv"
	"unicode/utf8"
)

// The JSON the SDK writes itself on every invocation (response meta, error
// bodies) is encoded by hand, byte for byte what encoding/json.Marshal
// writes (FuzzAppendJSONString checks that): reflection costs dozens of
// microseconds inside the sandbox, where every call and taken jump is
// expensive (see meta.go).

// responseMetaBuf is reused by every invocation: an instance serves one
// invocation at a time and the host copies the meta during response_set,
// so the buffer is free again as soon as that call returns.
var responseMetaBuf []byte

// appendResponseMeta appends {"status":N,"headers":{...}}, the document
// response_set takes. Headers are written in map order: the host reads the
// meta as a JSON object, where order carries no meaning.
func appendResponseMeta(b []byte, status int, headers map[string]string) []byte {
	b = append(b, `{"status":`...)
	b = appendStatus(b, status)
	if len(headers) > 0 {
		b = append(b, `,"headers":{`...)
		sep := false
		for k, v := range headers {
			if sep {
				b = append(b, ',')
			}
			sep = true
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// encodeResponseMeta is appendResponseMeta into a new buffer.
func encodeResponseMeta(status int, headers map[string]string) []byte {
	return appendResponseMeta(nil, status, headers)
}

// appendStatus writes a three-digit status without strconv's loop; any
// other number (the host refuses it) goes through strconv.
func appendStatus(b []byte, status int) []byte {
	if status < 100 || status > 999 {
		return strconv.AppendInt(b, int64(status), 10)
	}
	return append(b, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10))
}

// errorBody is the JSON of map[string]string{"error": msg, "request_id":
// id} (without request_id when id is empty), as json.Marshal writes it:
// keys in sorted order.
func errorBody(msg, id string) []byte {
	b := make([]byte, 0, len(`{"error":"","request_id":""}`)+len(msg)+len(id)+16)
	b = append(b, `{"error":`...)
	b = appendJSONString(b, msg)
	if id != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, id)
	}
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json.Marshal quotes it:
// HTML escaping on (<, > and & as \u003c, \u003e, \u0026), \b \f \n \r \t
// and other control characters escaped, invalid UTF-8 as \ufffd, U+2028
// and U+2029 escaped.
//
// Nearly every string needs no escape at all, so s is copied first and
// then checked eight bytes at a time, the last partial word included
// without a loop of its own (the buffer has room to read it whole); only
// a string that needs escaping is written again, byte by byte.
func appendJSONString(b []byte, s string) []byte {
	// Room for the quotes and for reading a whole word past the end of s.
	if cap(b)-len(b) < len(s)+10 {
		b = grow(b, len(s)+10)
	}
	start := len(b) + 1
	b = append(b, '"')
	b = append(b, s...)
	p := b[start:]
	var acc uint64
	i := 0
	for ; i+8 <= len(p); i += 8 {
		acc |= specialHTML(le64(p[i : i+8]))
	}
	// Bits above the end of s come from bytes outside it, or are
	// spurious bits above a special byte inside it (which is then found
	// anyway): masking them off is exact. With nothing left, the mask is 0.
	acc |= specialHTML(le64(p[i:i+8:cap(p)])) & (1<<(8*(len(p)-i)) - 1)
	if acc != 0 {
		b = appendEscaped(b[:start], s)
	}
	return append(b, '"')
}

// grow returns b with room for n more bytes, doubling so that a reused
// buffer stops growing after the first few invocations.
func grow(b []byte, n int) []byte {
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// specialHTML is special (meta.go) plus the bytes encoding/json escapes for
// HTML: <, > and &.
func specialHTML(x uint64) uint64 {
	lt := x ^ (lsbs * '<')
	gt := x ^ (lsbs * '>')
	amp := x ^ (lsbs * '&')
	return special(x) | ((lt-lsbs)&^lt|(gt-lsbs)&^gt|(amp-lsbs)&^amp)&msbs
}

// appendEscaped is the byte-by-byte quoting of s (without the quotes) for
// the strings that need it, mirroring encoding/json's appendString.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}
