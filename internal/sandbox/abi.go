package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// hostModuleName is the import module every Aegis host function lives in.
const hostModuleName = "aegis"

// Result codes of host calls. Non-negative results are lengths or 0;
// negative results are these codes, and the pending result then holds a
// UTF-8 error message (docs/abi.md).
const (
	codePermissionDenied int32 = -1
	codeNotFound         int32 = -2
	codeInvalidArgument  int32 = -3
	codeLimitExceeded    int32 = -4
	codeUnavailable      int32 = -5
	codeInternal         int32 = -6
)

// Caps on what a guest may hand to one host call. They bound the copies the
// host makes out of guest memory; the capability layer applies its own,
// usually smaller, limits per resource on top.
const (
	maxNameLen    = 4 << 10  // table, key, prefix, topic
	maxDataLen    = 16 << 20 // kv value, object, event payload, fetch or invoke request, any result
	maxMetaLen    = 64 << 10 // response meta JSON
	maxLogLine    = 16 << 10 // one log line; longer ones are cut
	maxErrMessage = 1 << 10  // error message placed in the result buffer
)

// hostFunc is one entry of the "aegis" import module. call returns the i32
// result; functions without a result (log) ignore it.
type hostFunc struct {
	name   string
	params int // number of i32 parameters
	result bool
	call   func(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32
}

// hostFuncs is the whole ABI, in the order docs/abi.md lists it. Reading it
// top to bottom is reading the contract.
var hostFuncs = []hostFunc{
	{name: "request_meta_len", params: 0, result: true, call: abiRequestMetaLen},
	{name: "request_meta_read", params: 2, result: true, call: abiRequestMetaRead},
	{name: "request_body_len", params: 0, result: true, call: abiRequestBodyLen},
	{name: "request_body_read", params: 2, result: true, call: abiRequestBodyRead},
	{name: "response_set", params: 4, result: true, call: abiResponseSet},
	{name: "result_len", params: 0, result: true, call: abiResultLen},
	{name: "result_read", params: 2, result: true, call: abiResultRead},
	{name: "kv_get", params: 4, result: true, call: abiKVGet},
	{name: "kv_put", params: 6, result: true, call: abiKVPut},
	{name: "kv_delete", params: 4, result: true, call: abiKVDelete},
	{name: "kv_list", params: 4, result: true, call: abiKVList},
	{name: "object_get", params: 2, result: true, call: abiObjectGet},
	{name: "object_put", params: 4, result: true, call: abiObjectPut},
	{name: "object_delete", params: 2, result: true, call: abiObjectDelete},
	{name: "object_list", params: 2, result: true, call: abiObjectList},
	{name: "publish", params: 4, result: true, call: abiPublish},
	{name: "fetch", params: 2, result: true, call: abiFetch},
	{name: "invoke", params: 2, result: true, call: abiInvoke},
	{name: "secret", params: 2, result: true, call: abiSecret},
	{name: "log", params: 3, result: false, call: abiLog},
}

// instantiateHostModule registers the "aegis" module in r. Each function
// finds its invocation through the call's context, so one host module
// serves every instance of every function in the runtime.
func instantiateHostModule(ctx context.Context, r wasmRuntime) error {
	b := r.NewHostModuleBuilder(hostModuleName)
	for _, hf := range hostFuncs {
		params := make([]valueType, hf.params)
		for i := range params {
			params[i] = valueTypeI32
		}
		var results []valueType
		if hf.result {
			results = []valueType{valueTypeI32}
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(wrapHostFunc(hf), params, results).
			Export(hf.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func wrapHostFunc(hf hostFunc) goModuleFunction {
	return goModuleFunc(func(ctx context.Context, mod guestModule, stack []uint64) {
		inv := invocationFrom(ctx)
		var code int32
		if inv == nil {
			// Host calls are only meaningful inside aegis_handle or a
			// command's _start: during _initialize there is no caller to
			// check grants against.
			code = codeUnavailable
		} else {
			code = hf.call(ctx, inv, mod.Memory(), stack)
		}
		if hf.result {
			stack[0] = encodeI32(code)
		}
	})
}

// --- guest memory -----------------------------------------------------------

// errOutOfRange is reported when a guest pointer/length pair does not lie
// inside its memory.
var errOutOfRange = fmt.Errorf("%w: pointer or length out of range", aegis.ErrInvalidArgument)

// guestBytes copies [ptr, ptr+n) out of guest memory. Copying (rather than
// aliasing) keeps the host safe if the guest memory grows or is reused
// after the call.
func guestBytes(mem guestMemory, ptr, n, limit uint32) ([]byte, error) {
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes, at most %d allowed", aegis.ErrLimitExceeded, n, limit)
	}
	if mem == nil {
		return nil, errOutOfRange
	}
	view, ok := mem.Read(ptr, n)
	if !ok {
		return nil, errOutOfRange
	}
	return append([]byte(nil), view...), nil
}

// guestName reads a table, key, prefix or topic: short and valid UTF-8.
func guestName(mem guestMemory, ptr, n uint32) (string, error) {
	if n > maxNameLen {
		return "", fmt.Errorf("%w: name longer than %d bytes", aegis.ErrInvalidArgument, maxNameLen)
	}
	b, err := guestBytes(mem, ptr, n, maxNameLen)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: name is not valid UTF-8", aegis.ErrInvalidArgument)
	}
	return string(b), nil
}

// copyOut writes src into guest memory at [ptr, ptr+n), copying at most n
// bytes, and returns how many it copied.
func copyOut(mem guestMemory, ptr, n uint32, src []byte) (int32, error) {
	if uint64(n) > uint64(len(src)) {
		n = uint32(len(src))
	}
	if mem == nil {
		return 0, errOutOfRange
	}
	if !mem.Write(ptr, src[:n]) {
		return 0, errOutOfRange
	}
	return int32(n), nil
}

// --- result buffer ------------------------------------------------------------

// ok stores a successful call's result and returns its length.
func (inv *invocation) ok(result []byte) int32 {
	if len(result) > maxDataLen {
		return inv.fail("", fmt.Errorf("%w: result of %d bytes is larger than %d", aegis.ErrLimitExceeded, len(result), maxDataLen))
	}
	inv.result = result
	return int32(len(result))
}

// fail maps err to a result code and leaves its message in the result
// buffer. Errors that carry none of the root sentinels are internal: the
// guest gets a generic message and the detail goes to the log, because it
// may name hosts or paths the function has no business seeing.
func (inv *invocation) fail(capability string, err error) int32 {
	code := codeFor(err)
	msg := err.Error()
	if code == codeInternal {
		// fn.logger already carries app, function and version.
		inv.fn.logger.LogAttrs(inv.ctx, slog.LevelError, "host call failed",
			slog.String(logkey.RequestID, inv.caller.RequestID),
			slog.String(logkey.Capability, capability),
			slog.Any(logkey.Error, err))
		msg = "internal error"
	}
	if len(msg) > maxErrMessage {
		msg = msg[:maxErrMessage]
	}
	inv.result = []byte(msg)
	return code
}

// codeFor maps an error to its ABI result code.
func codeFor(err error) int32 {
	switch {
	case errors.Is(err, aegis.ErrPermissionDenied):
		return codePermissionDenied
	case errors.Is(err, aegis.ErrNotFound):
		return codeNotFound
	case errors.Is(err, aegis.ErrInvalidArgument):
		return codeInvalidArgument
	case errors.Is(err, aegis.ErrLimitExceeded):
		return codeLimitExceeded
	case errors.Is(err, aegis.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return codeUnavailable
	default:
		return codeInternal
	}
}

// done clears the result buffer after a call that produces no result, so a
// stale value can never be mistaken for the answer to this call.
func (inv *invocation) done() int32 {
	inv.result = nil
	return 0
}

var errNoHost = fmt.Errorf("%w: no host capabilities configured", aegis.ErrUnavailable)

// --- request and response -----------------------------------------------------

func abiRequestMetaLen(_ context.Context, inv *invocation, _ guestMemory, _ []uint64) int32 {
	return int32(len(inv.requestMeta()))
}

func abiRequestMetaRead(_ context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	n, err := copyOut(mem, uint32(p[0]), uint32(p[1]), inv.requestMeta())
	if err != nil {
		return inv.fail("request", err)
	}
	return n
}

func abiRequestBodyLen(_ context.Context, inv *invocation, _ guestMemory, _ []uint64) int32 {
	return int32(len(inv.req.Body))
}

func abiRequestBodyRead(_ context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	n, err := copyOut(mem, uint32(p[0]), uint32(p[1]), inv.req.Body)
	if err != nil {
		return inv.fail("request", err)
	}
	return n
}

func abiResponseSet(_ context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	metaPtr, metaLen, bodyPtr, bodyLen := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if int64(bodyLen) > inv.fn.limits.maxResponse {
		// Failing the whole invocation (not just this call) keeps a guest
		// that ignores the code from answering 200 with a truncated body.
		inv.failure = ErrResponseTooLarge
		return inv.fail("response", fmt.Errorf("%w: body of %d bytes, at most %d allowed",
			ErrResponseTooLarge, bodyLen, inv.fn.limits.maxResponse))
	}
	meta, err := guestBytes(mem, metaPtr, metaLen, maxMetaLen)
	if err != nil {
		return inv.fail("response", err)
	}
	body, err := guestBytes(mem, bodyPtr, bodyLen, bodyLen)
	if err != nil {
		return inv.fail("response", err)
	}
	resp, err := decodeResponseMeta(meta)
	if err != nil {
		return inv.fail("response", err)
	}
	resp.Body = body
	inv.resp = resp
	return inv.done()
}

func abiResultLen(_ context.Context, inv *invocation, _ guestMemory, _ []uint64) int32 {
	return int32(len(inv.result))
}

func abiResultRead(_ context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	// Not inv.fail: that would overwrite the very result being read.
	n, err := copyOut(mem, uint32(p[0]), uint32(p[1]), inv.result)
	if err != nil {
		return codeInvalidArgument
	}
	return n
}

// --- key-value tables -----------------------------------------------------------

func abiKVGet(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	table, key, err := twoNames(mem, p)
	if err != nil {
		return inv.fail("kv", err)
	}
	if inv.host == nil {
		return inv.fail("kv", errNoHost)
	}
	v, err := inv.host.KVGet(ctx, &inv.caller, table, key)
	if err != nil {
		return inv.fail("kv", err)
	}
	return inv.ok(v)
}

func abiKVPut(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	table, key, err := twoNames(mem, p)
	if err != nil {
		return inv.fail("kv", err)
	}
	value, err := guestBytes(mem, uint32(p[4]), uint32(p[5]), maxDataLen)
	if err != nil {
		return inv.fail("kv", err)
	}
	if inv.host == nil {
		return inv.fail("kv", errNoHost)
	}
	if err := inv.host.KVPut(ctx, &inv.caller, table, key, value); err != nil {
		return inv.fail("kv", err)
	}
	return inv.done()
}

func abiKVDelete(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	table, key, err := twoNames(mem, p)
	if err != nil {
		return inv.fail("kv", err)
	}
	if inv.host == nil {
		return inv.fail("kv", errNoHost)
	}
	if err := inv.host.KVDelete(ctx, &inv.caller, table, key); err != nil {
		return inv.fail("kv", err)
	}
	return inv.done()
}

func abiKVList(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	table, prefix, err := twoNames(mem, p)
	if err != nil {
		return inv.fail("kv", err)
	}
	if inv.host == nil {
		return inv.fail("kv", errNoHost)
	}
	keys, err := inv.host.KVList(ctx, &inv.caller, table, prefix)
	if err != nil {
		return inv.fail("kv", err)
	}
	if keys == nil {
		keys = []string{} // "[]", never "null": guests decode a list
	}
	return inv.okJSON("kv", keys)
}

// --- objects --------------------------------------------------------------------

func abiObjectGet(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	key, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return inv.fail("objects", err)
	}
	if inv.host == nil {
		return inv.fail("objects", errNoHost)
	}
	data, err := inv.host.ObjectGet(ctx, &inv.caller, key)
	if err != nil {
		return inv.fail("objects", err)
	}
	return inv.ok(data)
}

func abiObjectPut(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	key, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return inv.fail("objects", err)
	}
	data, err := guestBytes(mem, uint32(p[2]), uint32(p[3]), maxDataLen)
	if err != nil {
		return inv.fail("objects", err)
	}
	if inv.host == nil {
		return inv.fail("objects", errNoHost)
	}
	if err := inv.host.ObjectPut(ctx, &inv.caller, key, data); err != nil {
		return inv.fail("objects", err)
	}
	return inv.done()
}

func abiObjectDelete(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	key, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return inv.fail("objects", err)
	}
	if inv.host == nil {
		return inv.fail("objects", errNoHost)
	}
	if err := inv.host.ObjectDelete(ctx, &inv.caller, key); err != nil {
		return inv.fail("objects", err)
	}
	return inv.done()
}

func abiObjectList(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	prefix, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return inv.fail("objects", err)
	}
	if inv.host == nil {
		return inv.fail("objects", errNoHost)
	}
	keys, err := inv.host.ObjectList(ctx, &inv.caller, prefix)
	if err != nil {
		return inv.fail("objects", err)
	}
	if keys == nil {
		keys = []string{}
	}
	return inv.okJSON("objects", keys)
}

// --- events, egress, logs -------------------------------------------------------

func abiPublish(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	topic, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return inv.fail("events", err)
	}
	data, err := guestBytes(mem, uint32(p[2]), uint32(p[3]), maxDataLen)
	if err != nil {
		return inv.fail("events", err)
	}
	if inv.host == nil {
		return inv.fail("events", errNoHost)
	}
	if err := inv.host.Publish(ctx, &inv.caller, topic, data); err != nil {
		return inv.fail("events", err)
	}
	return inv.done()
}

func abiFetch(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	raw, err := guestBytes(mem, uint32(p[0]), uint32(p[1]), maxDataLen)
	if err != nil {
		return inv.fail("egress", err)
	}
	req, err := decodeFetchRequest(raw)
	if err != nil {
		return inv.fail("egress", err)
	}
	if inv.host == nil {
		return inv.fail("egress", errNoHost)
	}
	resp, err := inv.host.Fetch(ctx, &inv.caller, req)
	if err != nil {
		return inv.fail("egress", err)
	}
	if resp == nil {
		resp = &FetchResponse{}
	}
	return inv.okJSON("egress", resp)
}

// abiInvoke calls a route of another function of the caller's app. The
// answer goes through the result buffer like fetch's, so it is held to
// maxDataLen whatever the callee's max_response allows.
func abiInvoke(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	raw, err := guestBytes(mem, uint32(p[0]), uint32(p[1]), maxDataLen)
	if err != nil {
		return inv.fail("invoke", err)
	}
	req, err := decodeInvokeRequest(raw)
	if err != nil {
		return inv.fail("invoke", err)
	}
	if inv.host == nil {
		return inv.fail("invoke", errNoHost)
	}
	resp, err := inv.host.Invoke(ctx, &inv.caller, req)
	if err != nil {
		return inv.fail("invoke", err)
	}
	if resp == nil {
		resp = &InvokeResponse{Status: 200}
	}
	return inv.okJSON("invoke", resp)
}

// abiSecret reads a secret the function is granted. The value is added
// to the invocation's scrubber before it reaches the guest, so no line the
// guest logs afterwards can carry it unscrubbed.
func abiSecret(ctx context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	name, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return inv.fail("secrets", err)
	}
	if inv.host == nil {
		return inv.fail("secrets", errNoHost)
	}
	v, err := inv.host.Secret(ctx, &inv.caller, name)
	if err != nil {
		return inv.fail("secrets", err)
	}
	inv.secrets.add(name, v)
	return inv.ok(v)
}

func abiLog(_ context.Context, inv *invocation, mem guestMemory, p []uint64) int32 {
	level := logLevel(int32(uint32(p[0])))
	n := uint32(p[2])
	if n > maxLogLine {
		n = maxLogLine // cut rather than refuse: a long line is still worth seeing
	}
	if mem == nil {
		return 0
	}
	view, ok := mem.Read(uint32(p[1]), n)
	if !ok {
		return 0 // log has no result; a bad pointer just loses the line
	}
	line := string(view)
	if level >= slog.LevelError {
		// Kept whatever the output budget: it is bounded, and it is what
		// the developer will want to see if the invocation fails.
		inv.errorLine = line
	}
	inv.guestLog(level, line)
	return 0
}

// logLevel maps the ABI's level numbers (0 debug, 1 info, 2 warn, 3 error)
// to slog levels; anything else is info.
func logLevel(n int32) slog.Level {
	switch n {
	case 0:
		return slog.LevelDebug
	case 2:
		return slog.LevelWarn
	case 3:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// twoNames reads the (table, key) or (table, prefix) pair that starts the
// kv calls' parameters.
func twoNames(mem guestMemory, p []uint64) (string, string, error) {
	a, err := guestName(mem, uint32(p[0]), uint32(p[1]))
	if err != nil {
		return "", "", err
	}
	b, err := guestName(mem, uint32(p[2]), uint32(p[3]))
	if err != nil {
		return "", "", err
	}
	return a, b, nil
}

func (inv *invocation) okJSON(capability string, v any) int32 {
	b, err := json.Marshal(v)
	if err != nil {
		return inv.fail(capability, err)
	}
	return inv.ok(b)
}
