package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	tests := []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Bearer aegis_abc_def", "aegis_abc_def", true},
		{"Bearer a-b.c~d+e/f==", "a-b.c~d+e/f==", true},
		{"Bearer " + strings.Repeat("a", MaxBearerLen-7), strings.Repeat("a", MaxBearerLen-7), true},

		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"Bearer\tabc", "", false},
		{"Bearer a b", "", false},
		{"Bearer a=b", "", false},
		{"Bearer =", "", false},
		{"Bearer abc\x00", "", false},
		{"Bearer ab\"c", "", false},
		{"Bearer ab,c", "", false},
		{"Bearer é", "", false},
		{"Token abc", "", false},
		{"Bearer " + strings.Repeat("a", MaxBearerLen-6), "", false},
	}
	for _, tt := range tests {
		got, ok := ParseBearer(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseBearer: never panics; what it returns is short, token68 and
// re-parses to itself.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  aegis_x_y", "Basic x", "", "Bearer ==", "Bearer a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := ParseBearer(header)
		if !ok {
			if tok != "" {
				t.Fatalf("not ok but token %q", tok)
			}
			return
		}
		if tok == "" || len(tok) > MaxBearerLen || !isToken68(tok) {
			t.Fatalf("bad token %q from %q", tok, header)
		}
		if again, ok := ParseBearer("Bearer " + tok); !ok || again != tok {
			t.Fatalf("token %q does not re-parse", tok)
		}
	})
}

// FuzzVerify: random bearer strings never panic and never verify.
func FuzzVerify(f *testing.F) {
	k, _, _ := newTestKeys(f)
	real := mustCreate(f, k, "app")
	for _, s := range []string{
		"", "aegis_", "aegis__", real[:len(real)-1] + "a", real[:len(real)-1],
		"aegis_" + strings.Repeat("a", idChars) + "_" + strings.Repeat("a", secretChars),
		"aegis_" + strings.Repeat("7", idChars) + "_" + strings.Repeat("7", secretChars),
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, bearer string) {
		if bearer == real {
			t.Skip()
		}
		id, err := k.Verify(ctx, bearer)
		if id != nil || !errors.Is(err, ErrUnauthenticated) || Reason(err) == "" {
			t.Fatalf("Verify(%q) = %v, %v", bearer, id, err)
		}
	})
}

func TestBase32RoundTrip(t *testing.T) {
	for n := range 40 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*37 + n)
		}
		enc := b32Encode(src)
		dst := make([]byte, n)
		if !b32Decode(dst, enc) || string(dst) != string(src) {
			t.Fatalf("round trip of %d bytes failed: %q", n, enc)
		}
	}
}
