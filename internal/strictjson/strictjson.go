// Package strictjson decodes JSON the platform reads back from places it
// does not trust to hold what it wrote (a store, a file, a guest's
// memory): exactly one value, no field the target type does not name,
// nothing after it. One definition, so every such reader refuses the same
// inputs.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData: something follows the JSON value.
var ErrTrailingData = errors.New("unexpected data after the JSON value")

// Unmarshal decodes exactly one JSON value from b into v, refusing
// unknown fields and anything but white space after the value.
func Unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}
