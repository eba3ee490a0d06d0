package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b) // not a terminal
	fmt.Fprintf(p, "building a …\nbuil")
	fmt.Fprintf(p, "ding a … ok (1 MB, 2.0s)\n")
	fmt.Fprintf(p, "partial")
	p.Close()
	if want := "building a …\nbuilding a … ok (1 MB, 2.0s)\npartial\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progressWriter{w: &b, tty: true, stop: make(chan struct{})} // no ticker: draws on writes only
	fmt.Fprintf(p, "building a …\nbuilding b …\n")
	if !strings.HasSuffix(b.String(), "building a, building b … 0s") {
		t.Errorf("status line: %q", b.String())
	}
	fmt.Fprintf(p, "building a … ok\n")
	out := b.String()
	if !strings.Contains(out, "\r\033[Kbuilding a … ok\n") || !strings.HasSuffix(out, "building b … 0s") {
		t.Errorf("after a ended: %q", out)
	}
	if strings.Contains(out, "building a …\n") {
		t.Errorf("a start line printed as a line on a terminal: %q", out)
	}
	fmt.Fprintf(p, "building b … failed\n")
	p.Close()
	if !strings.HasSuffix(b.String(), "\r\033[Kbuilding b … failed\n") {
		t.Errorf("at the end: %q", b.String())
	}
}
