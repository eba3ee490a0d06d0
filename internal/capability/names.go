package capability

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aegis-platform/aegis"
)

// Name limits. Tables become parts of NATS bucket names and kv keys become
// NATS subject tokens, so both are held to the characters NATS accepts.
const (
	maxTableName = 64
	maxKVKey     = 1024
	maxObjectKey = 1024
	maxTopic     = 255
)

// errTraversal marks an object key with a ".." segment. It wraps
// aegis.ErrInvalidArgument; callers test it to write a security log line,
// because no honest guest needs to climb out of a key prefix.
var errTraversal = fmt.Errorf("%w: object key has a \"..\" segment", aegis.ErrInvalidArgument)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{aegis.ErrInvalidArgument}, args...)...)
}

// validateTable accepts ^[A-Za-z0-9_-]{1,64}$.
func validateTable(table string) error {
	if table == "" || len(table) > maxTableName {
		return invalid("table name must be 1 to %d characters", maxTableName)
	}
	for i := 0; i < len(table); i++ {
		c := table[i]
		if !isAlnum(c) && c != '_' && c != '-' {
			return invalid("table name %q may only contain letters, digits, '_' and '-'", table)
		}
	}
	return nil
}

// validateKVKey accepts ^[-/_=.a-zA-Z0-9]{1,1024}$ without a leading or
// trailing "." and without "..": NATS turns a key into subject tokens split
// on ".", and an empty token is not a valid subject.
func validateKVKey(key string) error {
	if key == "" || len(key) > maxKVKey {
		return invalid("kv key must be 1 to %d characters", maxKVKey)
	}
	if err := validateKVChars(key); err != nil {
		return err
	}
	if key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return invalid("kv key %q must not start or end with '.' or contain \"..\"", key)
	}
	return nil
}

// validateKVPrefix accepts "" (list everything) or the start of a valid key.
func validateKVPrefix(prefix string) error {
	if len(prefix) > maxKVKey {
		return invalid("kv prefix longer than %d characters", maxKVKey)
	}
	if err := validateKVChars(prefix); err != nil {
		return err
	}
	if strings.HasPrefix(prefix, ".") || strings.Contains(prefix, "..") {
		return invalid("kv prefix %q must not start with '.' or contain \"..\"", prefix)
	}
	return nil
}

func validateKVChars(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("-/_=.", rune(c)) {
			// %q keeps control characters from reaching the guest raw.
			return invalid("kv key %q may only contain letters, digits and -/_=.", s)
		}
	}
	return nil
}

// validateTopic accepts dot-separated tokens of [A-Za-z0-9_-], so a guest
// cannot publish to a NATS wildcard ("*", ">") or an empty token.
func validateTopic(topic string) error {
	if topic == "" || len(topic) > maxTopic {
		return invalid("topic must be 1 to %d characters", maxTopic)
	}
	for _, tok := range strings.Split(topic, ".") {
		if tok == "" {
			return invalid("topic %q has an empty segment", topic)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; !isAlnum(c) && c != '_' && c != '-' {
				return invalid("topic %q may only contain letters, digits, '_', '-' and '.'", topic)
			}
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// NormalizeObjectKey returns the canonical form of an object key, or an
// error wrapping aegis.ErrInvalidArgument. Grants are matched against the
// canonical form, so "./images//a.png" and "images/a.png" are one key and a
// grant on "images/*" cannot be dodged by spelling.
//
// Refused: empty keys, keys over 1024 bytes, invalid UTF-8, control
// characters (NUL included), backslashes, absolute keys ("/x", "C:..."),
// any ".." segment, and a trailing "/" (that names a folder, not a key).
// "." segments and repeated slashes are dropped.
func NormalizeObjectKey(key string) (string, error) {
	k, err := normalizeObjectPath(key)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(k, "/") {
		return "", invalid("object key %q ends with '/'", key)
	}
	return k, nil
}

// normalizeObjectPrefix is NormalizeObjectKey for list prefixes: "" lists
// everything and a trailing "/" is kept ("images/" is not "images").
func normalizeObjectPrefix(prefix string) (string, error) {
	if prefix == "" {
		return "", nil
	}
	return normalizeObjectPath(prefix)
}

// normalizeObjectPath applies the checks shared by keys and prefixes. The
// result keeps one trailing "/" if the input had one.
func normalizeObjectPath(p string) (string, error) {
	if p == "" {
		return "", invalid("object key is empty")
	}
	if len(p) > maxObjectKey {
		return "", invalid("object key longer than %d bytes", maxObjectKey)
	}
	if !utf8.ValidString(p) {
		return "", invalid("object key is not valid UTF-8")
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return "", invalid("object key contains a control character")
		}
	}
	if strings.ContainsRune(p, '\\') {
		return "", invalid("object key %q contains a backslash", p)
	}
	if p[0] == '/' || isDriveLetter(p) {
		return "", invalid("object key %q is absolute", p)
	}
	segs := strings.Split(p, "/")
	out := segs[:0]
	for _, s := range segs {
		switch s {
		case "..":
			return "", errTraversal
		case "", ".":
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "", invalid("object key %q names no object", p)
	}
	k := strings.Join(out, "/")
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") {
		k += "/"
	}
	return k, nil
}

// isDriveLetter reports a Windows drive prefix ("C:"), refused so a key can
// never be mistaken for a host path by a store backed by files.
func isDriveLetter(p string) bool {
	return len(p) >= 2 && p[1] == ':' && (p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z')
}

// isTraversal reports whether err came from a ".." segment.
func isTraversal(err error) bool { return errors.Is(err, errTraversal) }
