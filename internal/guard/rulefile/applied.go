package rulefile

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aegis-platform/aegis/internal/strictjson"
)

// Bucket is the key-value bucket every server reads the applied rule
// file from, under the key Key.
const (
	Bucket = "aegis_guard_rules"
	Key    = "file"
)

// Applied is the rule file applied to the platform: its text as the
// operator wrote it, who applied it and when. Every server parses the
// text itself, so a server of a later version reads the file as its own
// parser does.
type Applied struct {
	File string    `json:"file"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// Marshal encodes a for the bucket.
func (a Applied) Marshal() ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode applied rule file: %w", err)
	}
	return b, nil
}

// UnmarshalApplied reads back what Marshal wrote, strictly: the bucket is
// shared, and a record that is not exactly ours is not believed.
func UnmarshalApplied(b []byte) (Applied, error) {
	var a Applied
	if len(b) > 6*MaxSize+4096 { // JSON escapes a byte in at most six
		return Applied{}, fmt.Errorf("read applied rule file: record of %d bytes is too large", len(b))
	}
	if err := strictjson.Unmarshal(b, &a); err != nil {
		return Applied{}, fmt.Errorf("read applied rule file: %w", err)
	}
	return a, nil
}
