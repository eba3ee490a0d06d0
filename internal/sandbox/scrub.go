package sandbox

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
)

// MinScrubbedSecret is the shortest secret value scrubbed from a
// function's log: a shorter one would turn every common two- or
// three-letter sequence of the log into a redaction while hiding next to
// nothing (a 3-byte secret is found by trying 16 million values).
const MinScrubbedSecret = 4

// secretScrubber replaces the secret values one invocation read, in the
// forms a function most often prints them by accident, with "[secret
// NAME]" in what it logs and in its error message. It is a guard against
// mistakes, not against a function set on leaking a value it holds (it can
// print it reversed, or one byte per line).
//
// The forms of a value v: v itself; base64 of v, standard and URL
// alphabets, with and without padding; hex of v in lower and upper case;
// and, for a value of several lines (a PEM key), each of its lines of at
// least MinScrubbedSecret bytes, since the log splits what a function
// prints into lines. Encodings are of the value alone: v inside a larger
// base64 or hex string is not found.
type secretScrubber struct {
	forms []secretForm
	r     *strings.Replacer // built on first use after forms changed
}

type secretForm struct{ text, name string }

// add keeps the forms of value, read as the secret name.
func (s *secretScrubber) add(name string, value []byte) {
	if len(value) < MinScrubbedSecret {
		return
	}
	for _, f := range secretForms(value) {
		if len(f) >= MinScrubbedSecret && !slices.ContainsFunc(s.forms, func(g secretForm) bool { return g.text == f }) {
			s.forms = append(s.forms, secretForm{text: f, name: name})
			s.r = nil
		}
	}
}

// scrub returns msg with every form replaced, longest forms first, so a
// padded base64 form is replaced whole rather than leaving its "==".
func (s *secretScrubber) scrub(msg string) string {
	if len(s.forms) == 0 || msg == "" {
		return msg
	}
	if s.r == nil {
		forms := slices.Clone(s.forms)
		slices.SortStableFunc(forms, func(a, b secretForm) int { return len(b.text) - len(a.text) })
		pairs := make([]string, 0, 2*len(forms))
		for _, f := range forms {
			pairs = append(pairs, f.text, "[secret "+f.name+"]")
		}
		s.r = strings.NewReplacer(pairs...)
	}
	return s.r.Replace(msg)
}

func (s *secretScrubber) reset() { *s = secretScrubber{} }

func secretForms(v []byte) []string {
	h := hex.EncodeToString(v)
	forms := []string{
		string(v),
		base64.StdEncoding.EncodeToString(v),
		base64.RawStdEncoding.EncodeToString(v),
		base64.URLEncoding.EncodeToString(v),
		base64.RawURLEncoding.EncodeToString(v),
		h,
		strings.ToUpper(h),
	}
	if lines := strings.Split(string(v), "\n"); len(lines) > 1 {
		for _, l := range lines {
			forms = append(forms, strings.TrimSuffix(l, "\r"))
		}
	}
	return forms
}

// forgetSecrets drops what the invocation read of secrets once it ended.
func (inv *invocation) forgetSecrets() {
	inv.secrets.reset()
	inv.result = nil
}
