package audit

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Format names the export's layout in its header line.
const Format = "aegis-audit/1"

// Header is an export's first line: the format and the audit public key.
// A verifier should trust a key it got elsewhere (aegis audit verify
// --public-key) over this line, which whoever edits the file can change.
type Header struct {
	Format    string `json:"format"`
	PublicKey string `json:"public_key"`
}

// MaxLine bounds one line of an export; a record is far smaller.
const MaxLine = 1 << 20

// WriteExport writes an export: the header, then one record per line.
func WriteExport(w io.Writer, pub ed25519.PublicKey, records func(yield func(Record) error) error) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(Header{Format: Format, PublicKey: EncodePublicKey(pub)}); err != nil {
		return fmt.Errorf("write audit export: %w", err)
	}
	return records(func(r Record) error { return enc.Encode(r) })
}

// ParseExport reads an export (untrusted bytes). A record line that does
// not decode is kept as an unreadable record, so Verify names its
// position; a missing or malformed header, or a line longer than MaxLine,
// is an error.
func ParseExport(r io.Reader) (Header, []Record, error) {
	var h Header
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	line := 0
	var out []Record
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			if err := strictjson.Unmarshal(text, &h); err != nil || h.Format != Format {
				return h, nil, fmt.Errorf("read audit export: line 1 is not an %s header", Format)
			}
			if _, ok := ParsePublicKey(h.PublicKey); !ok {
				return h, nil, errors.New("read audit export: the header's public key is not an Ed25519 key")
			}
			continue
		}
		if len(text) == 0 {
			continue
		}
		var rec Record
		if err := strictjson.Unmarshal(text, &rec); err != nil {
			rec = Record{unreadable: fmt.Sprintf("line %d is not a record", line)}
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return h, nil, fmt.Errorf("read audit export: line %d: %w", line+1, err)
	}
	if line == 0 {
		return h, nil, errors.New("read audit export: the file is empty")
	}
	return h, out, nil
}
