package asynclog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// stuckWriter holds every write until released, like a terminal whose
// output is paused, and keeps what it was finally given.
type stuckWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestStuckOutputNeverBlocksTheCaller(t *testing.T) {
	out := &stuckWriter{release: make(chan struct{})}
	const size, lines = 4, 100
	h := New(slog.NewJSONHandler(out, nil), size)
	logger := slog.New(h).With("component", "test")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range lines {
			logger.Info("line", "i", i)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("logging blocked on a stuck output")
	}
	dropped := h.Dropped()
	if dropped < lines-size-1 || dropped > lines-size {
		t.Fatalf("dropped %d of %d with a queue of %d", dropped, lines, size)
	}
	close(out.release)
	h.Close()
	logger.Info("after close") // written directly, not lost

	var written, markers int
	dec := json.NewDecoder(&out.buf)
	for {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			break
		}
		switch line["msg"] {
		case "line", "after close":
			written++
			if line["component"] != "test" {
				t.Errorf("line lost its attributes: %v", line)
			}
		case DroppedMsg(dropped):
			markers++
			if line["level"] != "WARN" || line["dropped"] != float64(dropped) {
				t.Errorf("marker = %v", line)
			}
		default:
			t.Errorf("unexpected line %v", line)
		}
	}
	if int64(written-1)+dropped != lines || markers != 1 {
		t.Errorf("%d lines written, %d dropped, %d markers; want %d lines in all and one marker", written-1, dropped, markers, lines)
	}
}

func TestNothingDroppedNoMarker(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, nil), 0)
	slog.New(h).Info("one")
	h.Close()
	h.Close()
	if h.Dropped() != 0 || bytes.Contains(buf.Bytes(), []byte("dropped")) || !bytes.Contains(buf.Bytes(), []byte("msg=one")) {
		t.Errorf("output %q, dropped %d", buf.String(), h.Dropped())
	}
}
