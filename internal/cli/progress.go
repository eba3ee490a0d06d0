package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressWriter shows long steps (building with the Go toolchain,
// uploading, the server compiling modules) while they run. Steps report in
// lines: "STEP …" when one starts, "STEP … RESULT" when it ends. Not on a
// terminal the lines pass through as they come, so a CI log keeps both. On
// a terminal a started step is shown on a status line that counts the
// seconds and is replaced by its end line; other lines print above it.
type progressWriter struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	partial []byte
	running []runningStep
	shown   bool // a status line is on screen
	frame   int
	stop    chan struct{}
	stopped sync.WaitGroup
}

type runningStep struct {
	name  string
	start time.Time
}

const startMark = " …"

// newProgress wraps w; Close must be called to stop the status line.
func newProgress(w io.Writer) *progressWriter {
	p := &progressWriter{w: w, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.stopped.Add(1)
		go p.tick()
	}
	return p
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		if err := p.line(line); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// line handles one complete line; mu is held.
func (p *progressWriter) line(line string) error {
	if !p.tty {
		_, err := fmt.Fprintln(p.w, line)
		return err
	}
	if name, ok := strings.CutSuffix(line, startMark); ok {
		p.running = append(p.running, runningStep{name: name, start: time.Now()})
		return p.draw()
	}
	if name, _, ok := strings.Cut(line, startMark+" "); ok {
		for i, s := range p.running {
			if s.name == name {
				p.running = append(p.running[:i], p.running[i+1:]...)
				break
			}
		}
	}
	p.clear()
	if _, err := fmt.Fprintln(p.w, line); err != nil {
		return err
	}
	return p.draw()
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// draw shows the running steps on the status line; mu is held.
func (p *progressWriter) draw() error {
	p.clear()
	if len(p.running) == 0 {
		return nil
	}
	names := make([]string, len(p.running))
	for i, s := range p.running {
		names[i] = s.name
	}
	took := time.Since(p.running[0].start).Truncate(time.Second)
	_, err := fmt.Fprintf(p.w, "%s %s … %s", spinner[p.frame%len(spinner)], strings.Join(names, ", "), took)
	p.shown = true
	return err
}

// clear erases the status line; mu is held.
func (p *progressWriter) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

func (p *progressWriter) tick() {
	defer p.stopped.Done()
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			p.frame++
			if len(p.running) > 0 {
				_ = p.draw()
			}
			p.mu.Unlock()
		case <-p.stop:
			return
		}
	}
}

// Close stops the status line and writes what is left of a partial line.
func (p *progressWriter) Close() {
	select {
	case <-p.stop:
		return
	default:
		close(p.stop)
	}
	p.stopped.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	if len(p.partial) > 0 {
		fmt.Fprintln(p.w, string(p.partial))
		p.partial = nil
	}
}
