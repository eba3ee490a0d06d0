//go:build !aegis_wazero

package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/samyfodil/wazy/component"
	"github.com/samyfodil/wazy/component/wit"
)

// This file is the part of the component host every component needs: the
// resource table behind the handles a guest holds, and wasi:io (errors,
// pollables, streams), wasi:cli, wasi:clocks and wasi:random. wazy ships a
// WASI 0.2 host of its own; Aegis does not use it, because a function's
// streams must end in Aegis's places (the response buffer under its cap,
// the function's log under its budget) and because its HTTP half keeps its
// resources where another host cannot reach them (docs/components.md).
// Everything a component can import is listed in componentFuncs; anything
// else refuses the deploy.

// Resource tags: the numbers this host mints handles under. The guest's
// own type indices are mapped onto them with component.WithResourceTag.
const (
	tagPollable uint32 = 0x1000 + iota
	tagInputStream
	tagOutputStream
	tagIOError
	tagFields
	tagIncomingRequest
	tagOutgoingRequest
	tagRequestOptions
	tagResponseOutparam
	tagIncomingResponse
	tagIncomingBody
	tagFutureTrailers
	tagOutgoingResponse
	tagOutgoingBody
	tagFutureIncomingResponse
	tagTerminalInput
	tagTerminalOutput
	// tagRefused is the first tag of the resources of interfaces a
	// function may import but never use (file system, sockets): each gets
	// one of its own, above this.
	tagRefused
)

// knownResources maps a resource, by its interface without version and
// its name, to its tag.
var knownResources = map[string]uint32{
	"wasi:io/poll#pollable":                               tagPollable,
	"wasi:io/streams#input-stream":                        tagInputStream,
	"wasi:io/streams#output-stream":                       tagOutputStream,
	"wasi:io/error#error":                                 tagIOError,
	"wasi:http/types#fields":                              tagFields,
	"wasi:http/types#incoming-request":                    tagIncomingRequest,
	"wasi:http/types#outgoing-request":                    tagOutgoingRequest,
	"wasi:http/types#request-options":                     tagRequestOptions,
	"wasi:http/types#response-outparam":                   tagResponseOutparam,
	"wasi:http/types#incoming-response":                   tagIncomingResponse,
	"wasi:http/types#incoming-body":                       tagIncomingBody,
	"wasi:http/types#future-trailers":                     tagFutureTrailers,
	"wasi:http/types#outgoing-response":                   tagOutgoingResponse,
	"wasi:http/types#outgoing-body":                       tagOutgoingBody,
	"wasi:http/types#future-incoming-response":            tagFutureIncomingResponse,
	"wasi:cli/terminal-input#terminal-input":              tagTerminalInput,
	"wasi:cli/terminal-output#terminal-output":            tagTerminalOutput,
	"wasi:http/outgoing-handler#outgoing-request":         tagOutgoingRequest,
	"wasi:http/outgoing-handler#request-options":          tagRequestOptions,
	"wasi:http/outgoing-handler#future-incoming-response": tagFutureIncomingResponse,
}

// refusedInterfaces are interfaces the JavaScript runtime (and most
// wasm32-wasip2 standard libraries) import whether or not a function uses
// them. Aegis grants neither files nor sockets, so they are served as
// having nothing: no preopened directory, every socket refused with
// access-denied. A function reaches the network only through
// wasi:http/outgoing-handler, under its egress grants.
var refusedInterfaces = map[string]bool{
	"wasi:filesystem/types":          true,
	"wasi:filesystem/preopens":       true,
	"wasi:sockets/network":           true,
	"wasi:sockets/instance-network":  true,
	"wasi:sockets/tcp":               true,
	"wasi:sockets/tcp-create-socket": true,
	"wasi:sockets/udp":               true,
	"wasi:sockets/udp-create-socket": true,
	"wasi:sockets/ip-name-lookup":    true,
}

// maxComponentResources bounds the resources one instance holds at once,
// so a guest minting handles in a loop runs out of them, not the server
// of memory.
const maxComponentResources = 100_000

// maxStreamChunk is what one read of an input stream returns at most, and
// what check-write permits for one write.
const maxStreamChunk = 1 << 20

// hostFn implements one imported function. sig is the function's signature
// as the component declares it, for the names of variant cases.
type hostFn func(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error)

// componentHost is the host side of one component instance: its
// resources, and the instance whose running invocation host calls serve.
type componentHost struct {
	inst  *instance
	mod   *componentModule
	table *component.HandleTable
	reps  map[uint32]*resource
	next  uint32
}

// resource is one host object a guest handle names. scoped ones are
// dropped when the invocation that made them ends, so an instance serving
// thousands of requests does not keep what a guest forgot to drop.
type resource struct {
	v      any
	scoped bool
}

func newComponentHost(inst *instance, mod *componentModule) *componentHost {
	return &componentHost{inst: inst, mod: mod, reps: map[uint32]*resource{}}
}

// add keeps v and returns its rep.
func (h *componentHost) add(v any) (uint32, error) {
	if len(h.reps) >= maxComponentResources {
		return 0, fmt.Errorf("component holds more than %d resources", maxComponentResources)
	}
	h.next++
	h.reps[h.next] = &resource{v: v, scoped: h.inst.current != nil}
	return h.next, nil
}

// own mints a handle for v, for a result the engine does not translate
// itself (one inside a result, option or list).
func (h *componentHost) own(tag uint32, v any) (uint32, error) {
	rep, err := h.add(v)
	if err != nil {
		return 0, err
	}
	if h.table == nil {
		return 0, errors.New("component resources are not ready")
	}
	return h.table.NewOwn(tag, rep), nil
}

// endInvocation forgets what the invocation made.
func (h *componentHost) endInvocation() {
	for rep, r := range h.reps {
		if r.scoped {
			delete(h.reps, rep)
		}
	}
}

func (h *componentHost) drop(_ context.Context, rep uint32) error {
	delete(h.reps, rep)
	return nil
}

// repOf reads a top-level handle argument, which the engine has turned
// into its rep.
func repOf[T any](h *componentHost, v component.Value, what string) (T, error) {
	var zero T
	rep, ok := v.(uint32)
	if !ok {
		return zero, fmt.Errorf("%s: want a handle, got %T", what, v)
	}
	r := h.reps[rep]
	if r == nil {
		return zero, fmt.Errorf("%s: handle names no live resource", what)
	}
	t, ok := r.v.(T)
	if !ok {
		return zero, fmt.Errorf("%s: handle names a %T", what, r.v)
	}
	return t, nil
}

// borrowed reads a handle nested in an argument (a list of borrows).
func borrowed[T any](h *componentHost, tag uint32, v component.Value, what string) (T, error) {
	return nested[T](h, tag, v, what, false)
}

// taken reads an owned handle nested in an argument, taking it from the
// guest: the resource is the host's again, and forgotten once read.
func taken[T any](h *componentHost, tag uint32, v component.Value, what string) (T, error) {
	return nested[T](h, tag, v, what, true)
}

// nested turns a handle the engine left as it is (inside a list, result
// or option) into its resource.
func nested[T any](h *componentHost, tag uint32, v component.Value, what string, take bool) (T, error) {
	var zero T
	handle, ok := v.(uint32)
	if !ok || h.table == nil {
		return zero, fmt.Errorf("%s: want a handle, got %T", what, v)
	}
	lookup := h.table.Rep
	if take {
		lookup = h.table.TakeOwn
	}
	rep, err := lookup(tag, handle)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	t, err := repOf[T](h, rep, what)
	if take {
		delete(h.reps, rep)
	}
	return t, err
}

// invocation is the invocation running on the instance, nil during
// instantiation.
func (h *componentHost) invocation() *invocation { return h.inst.current }

// callContext is what a host call waits on: the invocation's context.
func (h *componentHost) callContext(ctx context.Context) context.Context {
	if inv := h.invocation(); inv != nil {
		return inv.ctx
	}
	return ctx
}

// --- values -------------------------------------------------------------------

func argString(v component.Value, what string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %T", what, v)
	}
	return s, nil
}

func argBytes(v component.Value, what string) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case nil:
		return nil, nil
	case []component.Value:
		out := make([]byte, len(b))
		for i, e := range b {
			u, ok := e.(uint32)
			if !ok || u > 0xff {
				return nil, fmt.Errorf("%s: want list<u8>", what)
			}
			out[i] = byte(u)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want list<u8>, got %T", what, v)
}

func argU64(v component.Value, what string) (uint64, error) {
	u, ok := v.(uint64)
	if !ok {
		return 0, fmt.Errorf("%s: want a u64, got %T", what, v)
	}
	return u, nil
}

func ok(v component.Value) []component.Value {
	return []component.Value{component.ResultValue{Payload: v}}
}

func fail(v component.Value) []component.Value {
	return []component.Value{component.ResultValue{IsErr: true, Payload: v}}
}

func one(v component.Value) []component.Value { return []component.Value{v} }

// caseOf finds the case called name of the variant or enum named typeName
// in sig, so this host follows the component's own declaration rather
// than a numbering written down here.
func caseOf(sig *wit.Signature, typeName, name string) (uint32, bool) {
	resolve := sig.Types.Resolver()
	for idx, n := range sig.TypeNames {
		if n != typeName {
			continue
		}
		switch d := resolve(idx).(type) {
		case component.VariantDesc:
			for i, c := range d.Cases {
				if c.Name == name {
					return uint32(i), true
				}
			}
		case component.EnumDesc:
			for i, c := range d.Cases {
				if c == name {
					return uint32(i), true
				}
			}
		}
	}
	return 0, false
}

// variant is a case of a variant in sig, by name; a case the component
// does not declare is a trap, since the host cannot answer in its terms.
func variant(sig *wit.Signature, typeName, name string, payload component.Value) (component.VariantValue, error) {
	i, found := caseOf(sig, typeName, name)
	if !found {
		return component.VariantValue{}, fmt.Errorf("the component's %s has no case %s", typeName, name)
	}
	return component.VariantValue{Disc: i, Payload: payload}, nil
}

// --- wasi:io ---------------------------------------------------------------------

// ioError is a wasi:io/error: a message a guest can print.
type ioError struct{ msg string }

// pollable is ready at a time (a clock subscription) or at once.
type pollable struct {
	at time.Time // zero: ready now
}

func (p *pollable) ready() bool { return p.at.IsZero() || !time.Now().Before(p.at) }

// inputStream reads from bytes the host holds (a request body, a fetched
// response's body, an empty stdin).
type inputStream struct {
	data []byte
	off  int
}

// outputStream writes somewhere the host decides: the response body, an
// outgoing request's body, the function's log.
type outputStream struct {
	write func(p []byte) error
}

func (h *componentHost) streamError(sig *wit.Signature, err error) ([]component.Value, error) {
	if err == nil {
		v, e := variant(sig, "stream-error", "closed", nil)
		if e != nil {
			return nil, e
		}
		return fail(v), nil
	}
	handle, e := h.own(tagIOError, &ioError{msg: err.Error()})
	if e != nil {
		return nil, e
	}
	v, e := variant(sig, "stream-error", "last-operation-failed", handle)
	if e != nil {
		return nil, e
	}
	return fail(v), nil
}

var ioErrorDebugString = method("error.to-debug-string", func(h *componentHost, _ *wit.Signature, e *ioError, args []component.Value) ([]component.Value, error) {
	return one(e.msg), nil
})

var pollableReady = method("pollable.ready", func(h *componentHost, _ *wit.Signature, p *pollable, args []component.Value) ([]component.Value, error) {
	return one(p.ready()), nil
})

func pollableBlock(h *componentHost, ctx context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	p, err := repOf[*pollable](h, args[0], "pollable.block")
	if err != nil {
		return nil, err
	}
	return nil, h.wait(ctx, p.at)
}

// wait sleeps until at, or until the invocation ends: a guest waiting on
// a timer cannot outlive its timeout.
func (h *componentHost) wait(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if at.IsZero() || d <= 0 {
		return nil
	}
	ctx = h.callContext(ctx)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func poll(h *componentHost, ctx context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	list, isList := args[0].([]component.Value)
	if !isList || len(list) == 0 {
		return nil, errors.New("poll: want a non-empty list of pollables")
	}
	ps := make([]*pollable, len(list))
	for i, v := range list {
		p, err := borrowed[*pollable](h, tagPollable, v, "poll")
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	for {
		var readyIdx []uint32
		earliest := ps[0].at
		for i, p := range ps {
			if p.ready() {
				readyIdx = append(readyIdx, uint32(i))
			}
			if p.at.Before(earliest) {
				earliest = p.at
			}
		}
		if len(readyIdx) > 0 {
			return one(readyIdx), nil
		}
		// None is ready, so each is a timer: wait for the first.
		if err := h.wait(ctx, earliest); err != nil {
			return nil, err
		}
	}
}

func (h *componentHost) readyPollable() ([]component.Value, error) {
	return h.fresh(&pollable{})
}

func streamSubscribe(h *componentHost, _ context.Context, _ *wit.Signature, _ []component.Value) ([]component.Value, error) {
	// Every stream here is in memory: always ready.
	return h.readyPollable()
}

var inputRead = method("input-stream.read", func(h *componentHost, sig *wit.Signature, s *inputStream, args []component.Value) ([]component.Value, error) {
	n, err := argU64(args[1], "input-stream.read")
	if err != nil {
		return nil, err
	}
	if s.off >= len(s.data) {
		return h.streamError(sig, nil)
	}
	n = min(n, maxStreamChunk, uint64(len(s.data)-s.off))
	p := s.data[s.off : s.off+int(n)]
	s.off += int(n)
	return ok(p), nil
})

var inputSkip = method("input-stream.skip", func(h *componentHost, sig *wit.Signature, s *inputStream, args []component.Value) ([]component.Value, error) {
	n, err := argU64(args[1], "input-stream.skip")
	if err != nil {
		return nil, err
	}
	if s.off >= len(s.data) {
		return h.streamError(sig, nil)
	}
	n = min(n, uint64(len(s.data)-s.off))
	s.off += int(n)
	return ok(n), nil
})

var outputCheckWrite = method("output-stream.check-write", func(h *componentHost, _ *wit.Signature, _ *outputStream, args []component.Value) ([]component.Value, error) {
	return ok(uint64(maxStreamChunk)), nil
})

var outputWrite = method("output-stream.write", func(h *componentHost, sig *wit.Signature, s *outputStream, args []component.Value) ([]component.Value, error) {
	p, err := argBytes(args[1], "output-stream.write")
	if err != nil {
		return nil, err
	}
	if err := s.write(p); err != nil {
		return h.streamError(sig, err)
	}
	return ok(nil), nil
})

var outputWriteZeroes = method("output-stream.write-zeroes", func(h *componentHost, sig *wit.Signature, s *outputStream, args []component.Value) ([]component.Value, error) {
	n, err := argU64(args[1], "output-stream.write-zeroes")
	if err != nil {
		return nil, err
	}
	if err := s.write(make([]byte, min(n, maxStreamChunk))); err != nil {
		return h.streamError(sig, err)
	}
	return ok(nil), nil
})

var outputFlush = method("output-stream.flush", func(h *componentHost, _ *wit.Signature, _ *outputStream, args []component.Value) ([]component.Value, error) {
	return ok(nil), nil
})

var outputSplice = method("output-stream.splice", func(h *componentHost, sig *wit.Signature, dst *outputStream, args []component.Value) ([]component.Value, error) {
	src, err := borrowed[*inputStream](h, tagInputStream, args[1], "output-stream.splice")
	if err != nil {
		return nil, err
	}
	n, err := argU64(args[2], "output-stream.splice")
	if err != nil {
		return nil, err
	}
	if src.off >= len(src.data) {
		return h.streamError(sig, nil)
	}
	n = min(n, maxStreamChunk, uint64(len(src.data)-src.off))
	if err := dst.write(src.data[src.off : src.off+int(n)]); err != nil {
		return h.streamError(sig, err)
	}
	src.off += int(n)
	return ok(n), nil
})

// --- wasi:cli ---------------------------------------------------------------------

func getStdin(h *componentHost, _ context.Context, _ *wit.Signature, _ []component.Value) ([]component.Value, error) {
	return h.fresh(&inputStream{})
}

// logStream is stdout (info) or stderr (warn): lines of the function's
// log, within its output budget.
func (h *componentHost) logStream(level slog.Level) ([]component.Value, error) {
	rep, err := h.add(&outputStream{write: func(p []byte) error {
		if inv := h.invocation(); inv != nil {
			inv.writeStream(level, p)
		} else {
			h.inst.initOutput(level, p)
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	// Kept across invocations: a runtime may ask for stdout once.
	h.reps[rep].scoped = false
	return one(rep), nil
}

func getStdout(h *componentHost, _ context.Context, _ *wit.Signature, _ []component.Value) ([]component.Value, error) {
	return h.logStream(slog.LevelInfo)
}

func getStderr(h *componentHost, _ context.Context, _ *wit.Signature, _ []component.Value) ([]component.Value, error) {
	return h.logStream(slog.LevelWarn)
}

func noTerminal(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	return one(nil), nil
}

func noEnvironment(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	return one([]component.Value{}), nil
}

func exitCall(_ *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	if r, isResult := args[0].(component.ResultValue); isResult && !r.IsErr {
		return nil, errors.New("the function called exit")
	}
	return nil, errors.New("the function exited with a failure status")
}

// --- wasi:clocks and wasi:random ---------------------------------------------------

// monotonicStart anchors the monotonic clock the guests see.
var monotonicStart = time.Now()

func monotonicNow(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	return one(uint64(time.Since(monotonicStart))), nil
}

func clockResolution(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	return one(uint64(1)), nil
}

func subscribeInstant(h *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	when, err := argU64(args[0], "subscribe-instant")
	if err != nil {
		return nil, err
	}
	return h.fresh(&pollable{at: monotonicStart.Add(time.Duration(min(when, 1<<62)))})
}

func subscribeDuration(h *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	d, err := argU64(args[0], "subscribe-duration")
	if err != nil {
		return nil, err
	}
	return h.fresh(&pollable{at: time.Now().Add(time.Duration(min(d, 1<<62)))})
}

func wallNow(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	now := time.Now()
	return one([]component.Value{uint64(now.Unix()), uint32(now.Nanosecond())}), nil
}

func wallResolution(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	return one([]component.Value{uint64(0), uint32(1)}), nil
}

// maxRandomBytes bounds one request for random bytes.
const maxRandomBytes = 1 << 20

func randomBytes(_ *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := argU64(args[0], "get-random-bytes")
	if err != nil {
		return nil, err
	}
	if n > maxRandomBytes {
		return nil, fmt.Errorf("get-random-bytes: %d bytes asked, at most %d", n, maxRandomBytes)
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return one(b), nil
}

func randomU64(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return one(binary.LittleEndian.Uint64(b[:])), nil
}

func insecureSeed(*componentHost, context.Context, *wit.Signature, []component.Value) ([]component.Value, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return one([]component.Value{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}), nil
}

// --- refused interfaces -----------------------------------------------------------------

// refusedFunc answers a function of a refused interface in its own type:
// an empty list (no preopened directories), none, or an error case
// meaning "not allowed"; a method of a resource no guest can have been
// given traps.
func refusedFunc(iface string, f *wit.Func) hostFn {
	return func(h *componentHost, _ context.Context, sig *wit.Signature, _ []component.Value) ([]component.Value, error) {
		if f.Kind == wit.Method {
			return nil, fmt.Errorf("%s %s: functions have no files or sockets", iface, f.Name)
		}
		res := sig.Desc.Results.Unnamed
		if res == nil {
			return nil, nil
		}
		resolve := sig.Types.Resolver()
		if res.TypeIndex == nil {
			return nil, fmt.Errorf("%s %s: functions have no files or sockets", iface, f.Name)
		}
		switch d := resolve(*res.TypeIndex).(type) {
		case component.ListDesc:
			return one([]component.Value{}), nil
		case component.OptionDesc:
			return one(nil), nil
		case component.OwnDesc:
			// instance-network: a network that every socket call refuses.
			rep, err := h.add(struct{}{})
			if err != nil {
				return nil, err
			}
			return one(rep), nil
		case component.ResultDesc:
			if d.Err != nil && d.Err.TypeIndex != nil {
				for _, name := range []string{"access-denied", "access", "not-permitted"} {
					if v, found := namedCase(resolve, *d.Err.TypeIndex, name); found {
						return fail(v), nil
					}
				}
			}
		}
		return nil, fmt.Errorf("%s %s: functions have no files or sockets", iface, f.Name)
	}
}

func namedCase(resolve component.Resolver, idx uint32, name string) (component.Value, bool) {
	switch d := resolve(idx).(type) {
	case component.VariantDesc:
		for i, c := range d.Cases {
			if c.Name == name && c.Type == nil {
				return component.VariantValue{Disc: uint32(i)}, true
			}
		}
	case component.EnumDesc:
		for i, c := range d.Cases {
			if c == name {
				return uint32(i), true
			}
		}
	}
	return nil, false
}

// versionless strips "@x.y.z" from an interface name.
func versionless(iface string) string {
	if i := strings.IndexByte(iface, '@'); i >= 0 {
		return iface[:i]
	}
	return iface
}

// method is a resource method's host function: self is the resource its
// first argument names, of the type the method belongs to.
func method[T any](what string, body func(h *componentHost, sig *wit.Signature, self T, args []component.Value) ([]component.Value, error)) hostFn {
	return func(h *componentHost, _ context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
		self, err := repOf[T](h, args[0], what)
		if err != nil {
			return nil, err
		}
		return body(h, sig, self, args)
	}
}

// once hands out a child resource the first time it is asked for, as
// result<own<...>>; asking again is the error case (a body consumed, a
// stream taken).
func (h *componentHost) once(given *bool, tag uint32, v any) ([]component.Value, error) {
	if *given {
		return fail(nil), nil
	}
	*given = true
	handle, err := h.own(tag, v)
	if err != nil {
		return nil, err
	}
	return ok(handle), nil
}

// fresh keeps v and returns its handle, for a function whose result is
// the own<...> itself (the engine mints the handle).
func (h *componentHost) fresh(v any) ([]component.Value, error) {
	rep, err := h.add(v)
	if err != nil {
		return nil, err
	}
	return one(rep), nil
}
