package auth

import "strings"

// MaxBearerLen caps the Authorization header ParseBearer accepts. Our keys are
// 75 characters and admin tokens 43; the cap leaves room for other token
// kinds while keeping an attacker's megabyte header out of every later step.
const MaxBearerLen = 512

// ParseBearer extracts the token from an Authorization header of the form
// "Bearer <token>" (RFC 6750). The scheme is case-insensitive and surrounding
// spaces are trimmed. The token must be non-empty and made of the RFC's
// token68 characters, so it can hold no spaces, control bytes or quotes by the
// time anyone logs a reason next to it.
func ParseBearer(header string) (string, bool) {
	return ParseBearerMax(header, MaxBearerLen)
}

// ParseBearerMax is ParseBearer with a cap of its own, for tokens longer
// than API keys: a JWT route accepts headers up to MaxJWTLen.
func ParseBearerMax(header string, maxLen int) (string, bool) {
	if len(header) > maxLen {
		return "", false
	}
	h := strings.TrimSpace(header)
	const scheme = "bearer"
	if len(h) <= len(scheme)+1 || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	tok := strings.TrimLeft(h[len(scheme)+1:], " ")
	if tok == "" || !isToken68(tok) {
		return "", false
	}
	return tok, true
}

// isToken68 reports whether s matches 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
