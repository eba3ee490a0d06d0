package auth

import (
	"crypto/rand"
	"fmt"
)

// An API key reads aegis_<id>_<secret>:
//
//   - the "aegis_" prefix lets secret scanners (ours and GitHub's) recognise a
//     leaked key, and tells a reader what the string is;
//   - <id> is 10 random bytes (80 bits): enough that ids never collide in
//     practice, and it is the KV key of the record, so verifying is one get,
//     never a scan. It is not secret: knowing it grants nothing;
//   - <secret> is 32 random bytes (256 bits), the part that authenticates.
//
// Both are lowercase RFC 4648 base32 without padding: no '_' or '-' (so the
// separators are unambiguous and a double-click selects the whole key), no
// case to get wrong when a key is read aloud or retyped.
const (
	keyPrefix   = "aegis_"
	idBytes     = 10
	secretBytes = 32
	idChars     = (idBytes*8 + 4) / 5     // 16
	secretChars = (secretBytes*8 + 4) / 5 // 52
	keyLen      = len(keyPrefix) + idChars + 1 + secretChars
)

const b32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

// b32Value maps a byte to its 5-bit value, or 0xFF when it is not in the
// alphabet. Built once; never written after.
var b32Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(b32Alphabet); i++ {
		t[b32Alphabet[i]] = byte(i)
	}
	return t
}()

// b32Encode encodes src in lowercase unpadded base32.
func b32Encode(src []byte) string {
	out := make([]byte, 0, (len(src)*8+4)/5)
	var acc uint32
	bits := 0
	for _, b := range src {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, b32Alphabet[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		out = append(out, b32Alphabet[(acc<<(5-bits))&31])
	}
	return string(out)
}

// b32Decode decodes s into dst, which must be exactly the decoded length of s.
// It is strict where encoding/base32 is lenient: it rejects newlines and
// non-zero trailing bits, so each byte string has exactly one spelling and
// two different tokens can never verify as the same key. It works on a
// string without copying it, so the hot path does not allocate.
func b32Decode(dst []byte, s string) bool {
	if len(s) != (len(dst)*8+4)/5 {
		return false
	}
	var acc uint32
	bits, n := 0, 0
	for i := 0; i < len(s); i++ {
		v := b32Value[s[i]]
		if v == 0xFF {
			return false
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	// Leftover bits are padding; a canonical encoding leaves them zero.
	return acc&(1<<bits-1) == 0
}

// parseKey splits a presented API key into its id (still encoded: it is the
// store key) and its decoded secret.
func parseKey(s string) (id string, secret [secretBytes]byte, ok bool) {
	if len(s) != keyLen || s[:len(keyPrefix)] != keyPrefix || s[len(keyPrefix)+idChars] != '_' {
		return "", secret, false
	}
	id = s[len(keyPrefix) : len(keyPrefix)+idChars]
	var idRaw [idBytes]byte
	if !b32Decode(idRaw[:], id) || !b32Decode(secret[:], s[len(keyPrefix)+idChars+1:]) {
		return "", secret, false
	}
	return id, secret, true
}

// validID reports whether s could be an id this package generated; it keeps
// anything else out of store keys.
func validID(s string) bool {
	var raw [idBytes]byte
	return b32Decode(raw[:], s)
}

func randomBytes(b []byte) error {
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("read random bytes: %w", err)
	}
	return nil
}

// KeyID is the id of a key-shaped bearer token, "" for anything else. It
// is not secret (knowing it grants nothing): the guard counts the
// failures of a key by it.
func KeyID(bearer string) string {
	id, _, ok := parseKey(bearer)
	if !ok {
		return ""
	}
	return id
}
