package route

import "strings"

// Clean validates a request's escaped path and returns it percent-decoded,
// without a trailing slash ("/" stays "/"). ok is false for anything Match
// refuses: not starting with "/", longer than MaxPathLen, an empty segment
// ("//", "/a//b"), a "." or ".." segment in any spelling ("%2e%2E"), a NUL,
// an encoded "/" (%2F: it would let one segment pose as two to a function
// that joins parameters into a path), bad percent-encoding, or a raw '?' or
// '#' (a caller passed more than the path).
//
// Because "/" is never produced by decoding, the decoded path has exactly the
// segments of the escaped one.
func Clean(path string) (clean string, ok bool) {
	if len(path) == 0 || len(path) > MaxPathLen || path[0] != '/' {
		return "", false
	}
	if path == "/" {
		return path, true
	}
	if path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	escaped := false
	for start := 1; start <= len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		seg := path[start:end]
		hasEsc, ok := checkSegment(seg)
		if !ok {
			return "", false
		}
		escaped = escaped || hasEsc
		start = end + 1
	}
	if !escaped {
		return path, true
	}
	return decode(path), true
}

// checkSegment validates one escaped segment and reports whether it has
// percent-escapes.
func checkSegment(seg string) (escaped, ok bool) {
	if seg == "" {
		return false, false
	}
	dots, n := 0, 0 // decoded '.' count and decoded length
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch c {
		case 0, '?', '#':
			return false, false
		case '%':
			if i+2 >= len(seg) {
				return false, false
			}
			hi, ok1 := unhex(seg[i+1])
			lo, ok2 := unhex(seg[i+2])
			if !ok1 || !ok2 {
				return false, false
			}
			c = hi<<4 | lo
			if c == 0 || c == '/' {
				return false, false
			}
			escaped = true
			i += 2
		}
		if c == '.' {
			dots++
		}
		n++
	}
	if dots == n && n <= 2 { // "." or ".."
		return false, false
	}
	return escaped, true
}

// decode percent-decodes a path already checked by checkSegment: one
// allocation, for the result.
func decode(path string) string {
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' {
			hi, _ := unhex(path[i+1])
			lo, _ := unhex(path[i+2])
			c = hi<<4 | lo
			i += 2
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
