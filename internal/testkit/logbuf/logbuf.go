// Package logbuf collects what a test's slog logger writes, so tests can
// look for the lines the code under test must log: a denial's security
// line, a failure under its request id. Set AEGIS_TEST_LOG to also see
// every line on stderr while a test runs.
package logbuf

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync"
)

// Buffer is an io.Writer for a JSON slog handler, safe for concurrent use.
type Buffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	echo bool
}

// New returns an empty buffer.
func New() *Buffer { return &Buffer{echo: os.Getenv("AEGIS_TEST_LOG") != ""} }

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.echo {
		_, _ = os.Stderr.Write(p)
	}
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the decoded records whose line contains every needle
// (a plain substring match on the JSON text, so `"reason":"replayed"`
// matches a key and value).
func (b *Buffer) Lines(needles ...string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		ok := line != ""
		for _, n := range needles {
			ok = ok && strings.Contains(line, n)
		}
		var rec map[string]any
		if ok && json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// Messages returns the decoded records whose msg is exactly msg.
func (b *Buffer) Messages(msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range b.Lines() {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
