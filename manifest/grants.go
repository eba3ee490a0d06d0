package manifest

import (
	"errors"
	"regexp"
	"strings"
)

// MatchPattern reports whether a grant pattern covers name. It is the one
// pattern rule of the kv, objects and events grant lists, applied wherever
// a grant is checked (host calls, the event bus): "*" matches any name, a
// pattern ending in "*" matches names with that prefix, anything else must
// be equal. An empty pattern matches nothing, so a blank entry cannot widen
// a grant. Validation refuses '*' anywhere but at the end; here any other
// '*' is an ordinary character.
func MatchPattern(pattern, name string) bool {
	if pattern == "" {
		return false
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

// Patterns parses every entry of Hosts, so a deployed function carries
// them ready to match and no request parses a grant again. The error names
// the first entry that does not parse.
func (e EgressGrants) Patterns() ([]HostPattern, error) {
	if len(e.Hosts) == 0 {
		return nil, nil
	}
	out := make([]HostPattern, 0, len(e.Hosts))
	for _, s := range e.Hosts {
		p, err := ParseHostPattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// MaxSecretName is the longest name of a vault secret.
const MaxSecretName = 64

var vaultSecretNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CheckVaultSecretName checks the name of a vault secret: 1 to
// MaxSecretName letters, digits, '_', '-' and '.'. It is the one rule for
// names in secret grants and in the secret host call. There are no
// patterns: '*' is not a name character. (Webhook secrets, which HMAC
// auth names, have their own rule: CheckSecretName.)
func CheckVaultSecretName(name string) error {
	switch {
	case name == "":
		return errors.New("name is empty")
	case len(name) > MaxSecretName:
		return errors.New("longer than 64 characters")
	case !vaultSecretNameRE.MatchString(name):
		return errors.New("use letters, digits, '_', '-' and '.' (no patterns)")
	case name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, ".."):
		// The vault keeps a secret under a key its name is part of.
		return errors.New("'.' may not be first, last or twice in a row")
	}
	return nil
}
