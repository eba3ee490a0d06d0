package capability

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

func TestNormalizeObjectKey(t *testing.T) {
	tests := []struct {
		in, want  string
		traversal bool // refused as a ".." attack
	}{
		{"images/a.png", "images/a.png", false},
		{"./a//b", "a/b", false},
		{"a/./b/.", "", false}, // ends in a folder
		{"a/b/", "", false},
		{"a", "a", false},
		{"images/ünïcode ok.png", "images/ünïcode ok.png", false},
		{"ab:c", "ab:c", false},
		{"a:b", "", false}, // read as a drive letter
		{"...", "...", false},
		{"a..b/c", "a..b/c", false},
		{"", "", false},
		{".", "", false},
		{"./", "", false},
		{"//", "", false},
		{"/etc/passwd", "", false},
		{"C:\\Windows", "", false},
		{"C:/Windows", "", false},
		{"a\\b", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"a\x7fb", "", false},
		{"a\u0085b", "", false}, // C1 control
		{"\xff\xfe", "", false},
		{strings.Repeat("a", 1025), "", false},
		{strings.Repeat("a", 1024), strings.Repeat("a", 1024), false},
		{"..", "", true},
		{"../x", "", true},
		{"a/../b", "", true},
		{"a/..", "", true},
		{"./a/./../b", "", true},
	}
	for _, tt := range tests {
		got, err := NormalizeObjectKey(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeObjectKey(%q) = %q, want an error", tt.in, got)
				continue
			}
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("NormalizeObjectKey(%q) error %v is not ErrInvalidArgument", tt.in, err)
			}
			if isTraversal(err) != tt.traversal {
				t.Errorf("NormalizeObjectKey(%q) traversal = %v, want %v", tt.in, isTraversal(err), tt.traversal)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeObjectKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeObjectPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"images/", "images/"},
		{"./images//", "images/"},
		{"images/.", "images/"},
		{"imag", "imag"},
	}
	for _, tt := range tests {
		got, err := normalizeObjectPrefix(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalizeObjectPrefix(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzNormalizeObjectKey(f *testing.F) {
	for _, s := range []string{
		"images/a.png", "./a//b", "../x", "a/../b", "/abs", "C:\\x", "a\x00b", "a/", ".", "...", "a/./.", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		check := func(what, out string, trailingOK bool) {
			if out == "" || strings.HasPrefix(out, "/") || len(out) > maxObjectKey || !utf8.ValidString(out) {
				t.Fatalf("%s(%q) = %q", what, in, out)
			}
			segs := strings.Split(out, "/")
			if trailingOK && segs[len(segs)-1] == "" {
				segs = segs[:len(segs)-1]
			}
			for _, s := range segs {
				if s == ".." || s == "." || s == "" {
					t.Fatalf("%s(%q) = %q has segment %q", what, in, out, s)
				}
			}
			if strings.ContainsAny(out, "\\\x00") || isDriveLetter(out) {
				t.Fatalf("%s(%q) = %q", what, in, out)
			}
		}
		if out, err := NormalizeObjectKey(in); err == nil {
			check("NormalizeObjectKey", out, false)
			if again, err := NormalizeObjectKey(out); err != nil || again != out {
				t.Fatalf("not idempotent: %q → %q → %q (%v)", in, out, again, err)
			}
			if !manifest.MatchPattern(out, out) {
				t.Fatalf("key %q does not match itself", out)
			}
		} else if !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Fatalf("NormalizeObjectKey(%q) error %v is not ErrInvalidArgument", in, err)
		}
		if out, err := normalizeObjectPrefix(in); err == nil && out != "" {
			check("normalizeObjectPrefix", out, true)
			if again, err := normalizeObjectPrefix(out); err != nil || again != out {
				t.Fatalf("prefix not idempotent: %q → %q → %q (%v)", in, out, again, err)
			}
		}
	})
}

// FuzzMatch checks coversPrefix, which decides whether a list may be
// served, against the pattern rule it must agree with (manifest.MatchPattern).
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*", "x"}, {"images/*", "images/a"}, {"entries", "entries"}, {"a*b", "axb"}, {"", ""}, {"**", "*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := manifest.MatchPattern(pattern, name)
		prefix, isPrefix := strings.CutSuffix(pattern, "*")
		switch {
		case pattern == "":
			if got {
				t.Fatalf("empty pattern matched %q", name)
			}
		case isPrefix:
			if got != strings.HasPrefix(name, prefix) {
				t.Fatalf("MatchPattern(%q, %q) = %v", pattern, name, got)
			}
			if !manifest.MatchPattern(pattern, prefix+name) {
				t.Fatalf("MatchPattern(%q, %q) = false", pattern, prefix+name)
			}
			// A list is allowed only where every listed name would match.
			if coversPrefix(name, []string{pattern}) && !manifest.MatchPattern(pattern, name+"suffix") {
				t.Fatalf("coversPrefix(%q) with %q but %q not matched", name, pattern, name+"suffix")
			}
		default:
			if got != (pattern == name) {
				t.Fatalf("MatchPattern(%q, %q) = %v", pattern, name, got)
			}
			if coversPrefix(name, []string{pattern}) {
				t.Fatalf("exact pattern %q covers prefix %q", pattern, name)
			}
		}
	})
}
