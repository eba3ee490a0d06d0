package jsonenc

import (
	"encoding/json"
	"math"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "<&>", "\x00\x1f\x7f\b\f\n\r\t\"\\", "\u2028\u2029", "\xff\xfe é", "日本語", "a\xc3"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.001, 0.123, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 123456.789, -2.5e-8, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
	if got := AppendFloat(nil, math.NaN()); string(got) != "null" {
		t.Errorf("NaN: got %s, want null", got)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("hello")
	f.Add("\xff<\u2028\x00\"")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	f.Add(0.25)
	f.Add(3e-9)
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendFloat(nil, v); string(got) != string(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}
