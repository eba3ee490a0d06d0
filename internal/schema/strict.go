package schema

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Why a second JSON reader. encoding/json, which decodes what the validator
// sees, keeps the last of two members with the same name and turns invalid
// UTF-8 and lone surrogate escapes ("\ud800") into U+FFFD. The function
// receives the raw bytes, not the decoded value: a parser that keeps the
// first member, or the bytes as sent, reads something the schema never
// checked ({"name":{"$gt":""},"name":"ok"} passes a schema wanting a
// string). So a text is refused unless every reading of it is the same.
//
// jsontext (github.com/go-json-experiment/json, the prototype of
// encoding/json/v2) refuses exactly these by default and says where, by
// JSON pointer; it compares member names after unescaping, so
// {"na\u006de":1,"name":2} is a duplicate too. A tokenizer of our own would
// be one more parser of hostile input to get wrong. Like the validator, it
// is imported here and nowhere else.

// Reasons of an ambiguous text; fixed strings, so a message never carries
// what was sent.
const (
	reasonDuplicate = "duplicate member name"
	reasonUTF8      = "invalid UTF-8"
	reasonSurrogate = "invalid surrogate escape"
)

// errSyntax is a text that is not exactly one JSON value.
var errSyntax = errors.New("syntax error")

// ambiguity is a JSON text that encoding/json reads but that a different
// parser could read differently: where (from the root) and why.
type ambiguity struct {
	steps  []step
	reason string
}

// step is one level of a location: a member name, or an array index.
type step struct {
	name  string // the member name, or the index in decimal
	index bool
}

// Error names the place for an author (schema files are the deployer's
// own text): "duplicate member name at properties.type".
func (a *ambiguity) Error() string {
	where := strings.TrimPrefix(a.field(""), ".")
	if where == "" {
		where = "the top level"
	}
	return a.reason + " at " + where
}

// field renders the location under root like fieldPath: ".key" for
// members, "[i]" for array items; names are quoted and shortened by
// writeKey, since they are the sender's.
func (a *ambiguity) field(root string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, s := range a.steps {
		if b.Len() > maxPathLen {
			b.WriteString("…")
			break
		}
		if _, err := strconv.Atoi(s.name); s.index && err == nil {
			b.WriteString("[" + s.name + "]")
			continue
		}
		writeKey(&b, s.name)
	}
	return b.String()
}

// checkUnambiguous reads the first JSON value of data token by token and
// refuses, with an *ambiguity, duplicate member names at any depth, invalid
// UTF-8 and invalid surrogate escapes. It is meant for text encoding/json
// has accepted; anything else it refuses is errSyntax.
func checkUnambiguous(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		if _, err := dec.ReadToken(); err != nil {
			return locate(dec, data, err)
		}
		if dec.StackDepth() == 0 {
			return nil // one whole value; what may follow is encoding/json's to refuse
		}
	}
}

// locate turns the decoder's refusal into an *ambiguity. The decoder's
// stack, still as it was at the failing token, tells an array index from
// a member name that looks like one.
func locate(dec *jsontext.Decoder, data []byte, err error) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return errSyntax
	}
	reason := classify(se, data)
	if reason == "" {
		return errSyntax
	}
	a := &ambiguity{reason: reason}
	level := 1
	for tok := range se.JSONPointer.Tokens() {
		// Each step renders to at least two bytes, so more than
		// maxPathLen steps could never be shown.
		if level > maxPathLen {
			break
		}
		index := false
		if level <= dec.StackDepth() {
			k, _ := dec.StackIndex(level)
			index = k == '['
		}
		a.steps = append(a.steps, step{name: tok, index: index})
		level++
	}
	return a
}

// classify names what the decoder refused. Past encoding/json, an escape
// can only fail as a surrogate, and the offset of any other refusal of a
// string is the first byte that is not UTF-8. Anything else is not known
// to be one of the three and gets "".
func classify(se *jsontext.SyntacticError, data []byte) string {
	if errors.Is(se.Err, jsontext.ErrDuplicateName) {
		return reasonDuplicate
	}
	off := se.ByteOffset
	if off < 0 || off >= int64(len(data)) {
		return ""
	}
	if data[off] == '\\' {
		return reasonSurrogate
	}
	if r, _ := utf8.DecodeRune(data[off:]); r == utf8.RuneError {
		return reasonUTF8
	}
	return ""
}
