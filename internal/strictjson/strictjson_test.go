package strictjson

import (
	"errors"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	type rec struct {
		A int `json:"a"`
	}
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"a":1}`, true},
		{" {\"a\":1} \n", true},
		{`{"a":1,"b":2}`, false}, // unknown field
		{`{"a":1} {}`, false},    // a second value
		{`{"a":1} }`, false},     // a stray delimiter
		{`{"a":1}x`, false},
		{`{"a":`, false},
		{``, false},
	} {
		var r rec
		err := Unmarshal([]byte(c.in), &r)
		if (err == nil) != c.ok {
			t.Errorf("Unmarshal(%q) = %v, want ok %v", c.in, err, c.ok)
		}
		if c.in == `{"a":1} {}` && !errors.Is(err, ErrTrailingData) {
			t.Errorf("a second value: %v, want ErrTrailingData", err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`{"a":1} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct {
			A int `json:"a"`
		}
		_ = Unmarshal(b, &v)
	})
}
