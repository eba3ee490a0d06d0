package sandbox

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// maxGuestOutput bounds what one invocation may send to the logs through
// stdout, stderr and the log host call together, so a chatty or hostile
// guest cannot flood the log pipeline.
const maxGuestOutput = 64 << 10

// invocation is the state of one call into a guest. Host functions find it
// through the call's context (invocationFrom); it is only ever touched by
// the goroutine running that call, so it needs no locking.
type invocation struct {
	ctx    context.Context // &call, or for a command a cancellable child of it
	call   callContext
	fn     *Function
	host   Host
	req    *Request
	caller Caller
	meter  Meter // the caller's Meter when the request brings none

	meta   []byte   // request meta JSON, built on first use
	result []byte   // the pending result (docs/abi.md "Result buffer")
	resp   Response // set by response_set

	// failure, when set by a host call, fails the invocation whatever the
	// guest returns (for example a response over the size limit).
	failure error

	// errorLine is the last line the guest logged at error level, kept
	// as its own error message should the invocation fail (FunctionError).
	errorLine string

	// secrets holds the secret values this invocation read, to scrub
	// from its log lines and error message; cleared when it ends.
	secrets secretScrubber

	outputLeft int  // remaining maxGuestOutput budget
	truncated  bool // the "output truncated" notice was logged
	stdout     lineBuffer
	stderr     lineBuffer

	// Command modules only: stdout is the response body, capped at
	// MaxResponse; overflowing cancels the call with ErrResponseTooLarge.
	body   *bytes.Buffer
	cancel context.CancelCauseFunc
}

type invocationKey struct{}

func withInvocation(ctx context.Context, inv *invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

// requestMeta is the request without its body as JSON, built lazily: many
// handlers (events, bodies-only functions) never ask for it.
func (inv *invocation) requestMeta() []byte {
	if inv.meta == nil {
		inv.meta = appendRequestMeta(make([]byte, 0, 512), inv.req)
	}
	return inv.meta
}

// guestLog forwards one line of guest output to the host, within budget.
func (inv *invocation) guestLog(level slog.Level, msg string) {
	if inv.outputLeft <= 0 {
		if !inv.truncated {
			inv.truncated = true
			inv.emit(slog.LevelWarn, "guest output truncated: more than 64 KiB in one invocation")
		}
		return
	}
	// Scrubbed before it is cut, so a cut cannot leave half a value
	// that no longer matches.
	msg = inv.secrets.scrub(msg)
	if len(msg) > inv.outputLeft {
		msg = msg[:inv.outputLeft]
	}
	inv.outputLeft -= len(msg)
	inv.emit(level, strings.ToValidUTF8(msg, "\uFFFD"))
}

// TakeLogBudget takes n bytes from the log budget of the invocation
// running under ctx, the one its own output draws on (64 KiB), and reports
// whether any was left. A Host writing records of its own to the
// function's log (a denial) asks first, so a guest repeating a refused
// call in a loop cannot flood the log where its output could not. Outside
// an invocation it reports true.
func TakeLogBudget(ctx context.Context, n int) bool {
	inv := invocationFrom(ctx)
	if inv == nil {
		return true
	}
	if inv.outputLeft <= 0 {
		return false
	}
	inv.outputLeft -= n
	return true
}

func (inv *invocation) emit(level slog.Level, msg string) {
	if inv.host != nil {
		inv.host.Log(inv.ctx, &inv.caller, level, msg)
		return
	}
	inv.fn.logger.LogAttrs(inv.ctx, level, msg,
		slog.String(logkey.RequestID, inv.caller.RequestID),
		slog.String(logkey.Source, "guest"))
}

// flushOutput logs any partial last lines of stdout and stderr.
func (inv *invocation) flushOutput() {
	if line, ok := inv.stdout.flush(); ok {
		inv.guestLog(slog.LevelInfo, line)
	}
	if line, ok := inv.stderr.flush(); ok {
		inv.guestLog(slog.LevelWarn, line)
	}
}

// writeStream splits guest output into lines and logs each.
func (inv *invocation) writeStream(level slog.Level, p []byte) {
	lb := &inv.stdout
	if level >= slog.LevelWarn {
		lb = &inv.stderr
	}
	lb.write(p, func(line string) { inv.guestLog(level, line) })
}

// lineBuffer holds the unfinished last line of a stream. A line longer than
// maxLogLine is emitted in pieces so the buffer stays bounded.
type lineBuffer struct{ partial []byte }

func (lb *lineBuffer) write(p []byte, emit func(string)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			lb.partial = append(lb.partial, p...)
			for len(lb.partial) >= maxLogLine {
				emit(string(lb.partial[:maxLogLine]))
				lb.partial = append(lb.partial[:0], lb.partial[maxLogLine:]...)
			}
			return
		}
		lb.partial = append(lb.partial, p[:i]...)
		emit(strings.TrimSuffix(string(lb.partial), "\r"))
		lb.partial = lb.partial[:0]
		p = p[i+1:]
	}
}

func (lb *lineBuffer) flush() (string, bool) {
	if len(lb.partial) == 0 {
		return "", false
	}
	s := string(lb.partial)
	lb.partial = lb.partial[:0]
	return s, true
}

// guestStream is the io.Writer wired to an instance's stdout or stderr. An
// instance outlives invocations, so the writer routes to whichever one is
// running; output with no invocation (during _initialize) goes to the
// engine log.
type guestStream struct {
	inst  *instance
	level slog.Level
}

func (w guestStream) Write(p []byte) (int, error) {
	if inv := w.inst.current; inv != nil {
		inv.writeStream(w.level, p)
		return len(p), nil
	}
	w.inst.initOutput(w.level, p)
	return len(p), nil
}

// commandStdout collects a command module's stdout as the response body.
type commandStdout struct{ inv *invocation }

func (w commandStdout) Write(p []byte) (int, error) {
	inv := w.inv
	if int64(inv.body.Len()+len(p)) > inv.fn.limits.maxResponse {
		inv.failure = ErrResponseTooLarge
		inv.cancel(ErrResponseTooLarge) // stop the guest now; it is already lost
		return 0, io.ErrShortWrite
	}
	return inv.body.Write(p)
}
