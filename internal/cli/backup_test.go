package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestByteBar: nothing at all off a terminal; on one, a bar that stays
// below 100 % until the end, since the size it goes toward is an estimate.
func TestByteBar(t *testing.T) {
	var quiet bytes.Buffer
	b := newByteBar(&quiet, "backup")
	b.start(100)
	_, _ = b.Write(make([]byte, 50))
	b.done(true)
	if quiet.Len() != 0 {
		t.Fatalf("off a terminal the bar wrote %q", quiet.String())
	}

	var tty bytes.Buffer
	b = newByteBar(&tty, "backup")
	b.tty = true
	b.start(100)
	_, _ = b.Write(make([]byte, 150)) // more than the estimate
	b.draw(true)
	if s := tty.String(); !strings.Contains(s, " 99%") || strings.Contains(s, "100%") {
		t.Fatalf("before the end: %q", s)
	}
	b.done(true)
	if s := tty.String(); !strings.Contains(s, "100%") || !strings.HasSuffix(s, "\n") || !strings.Contains(s, "150 B") {
		t.Fatalf("at the end: %q", s)
	}
}
