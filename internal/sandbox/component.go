//go:build !aegis_wazero

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/samyfodil/wazy/api"
	"github.com/samyfodil/wazy/component"
	"github.com/samyfodil/wazy/component/wit"
)

// Components (docs/components.md): a WebAssembly component that exports
// wasi:http/incoming-handler is served like a core-module function. Its
// imports are read from the component itself at deploy, each matched to
// this host's implementation (componentFuncs) with the signature the
// component declares; an import with none refuses the deploy, named.

// componentFuncs is every function a component may import, by interface
// (without its version) and name.
var componentFuncs = map[string]map[string]hostFn{
	"wasi:io/error": {"[method]error.to-debug-string": ioErrorDebugString},
	"wasi:io/poll": {
		"[method]pollable.ready": pollableReady,
		"[method]pollable.block": pollableBlock,
		"poll":                   poll,
	},
	"wasi:io/streams": {
		"[method]input-stream.read":                             inputRead,
		"[method]input-stream.blocking-read":                    inputRead,
		"[method]input-stream.skip":                             inputSkip,
		"[method]input-stream.blocking-skip":                    inputSkip,
		"[method]input-stream.subscribe":                        streamSubscribe,
		"[method]output-stream.check-write":                     outputCheckWrite,
		"[method]output-stream.write":                           outputWrite,
		"[method]output-stream.blocking-write-and-flush":        outputWrite,
		"[method]output-stream.flush":                           outputFlush,
		"[method]output-stream.blocking-flush":                  outputFlush,
		"[method]output-stream.subscribe":                       streamSubscribe,
		"[method]output-stream.write-zeroes":                    outputWriteZeroes,
		"[method]output-stream.blocking-write-zeroes-and-flush": outputWriteZeroes,
		"[method]output-stream.splice":                          outputSplice,
		"[method]output-stream.blocking-splice":                 outputSplice,
	},
	"wasi:cli/environment": {
		"get-environment": noEnvironment,
		"get-arguments":   noEnvironment,
		"initial-cwd":     noTerminal,
	},
	"wasi:cli/exit":            {"exit": exitCall},
	"wasi:cli/stdin":           {"get-stdin": getStdin},
	"wasi:cli/stdout":          {"get-stdout": getStdout},
	"wasi:cli/stderr":          {"get-stderr": getStderr},
	"wasi:cli/terminal-input":  {},
	"wasi:cli/terminal-output": {},
	"wasi:cli/terminal-stdin":  {"get-terminal-stdin": noTerminal},
	"wasi:cli/terminal-stdout": {"get-terminal-stdout": noTerminal},
	"wasi:cli/terminal-stderr": {"get-terminal-stderr": noTerminal},
	"wasi:clocks/monotonic-clock": {
		"now":                monotonicNow,
		"resolution":         clockResolution,
		"subscribe-instant":  subscribeInstant,
		"subscribe-duration": subscribeDuration,
	},
	"wasi:clocks/wall-clock": {"now": wallNow, "resolution": wallResolution},
	"wasi:random/random":     {"get-random-bytes": randomBytes, "get-random-u64": randomU64},
	"wasi:random/insecure": {
		"get-insecure-random-bytes": randomBytes,
		"get-insecure-random-u64":   randomU64,
	},
	"wasi:random/insecure-seed": {"insecure-seed": insecureSeed},
	"wasi:http/types": {
		"[constructor]fields":                               fieldsNew,
		"[static]fields.from-list":                          fieldsFromList,
		"[method]fields.get":                                fieldsGet,
		"[method]fields.has":                                fieldsHas,
		"[method]fields.set":                                fieldsSet,
		"[method]fields.delete":                             fieldsDelete,
		"[method]fields.append":                             fieldsAppend,
		"[method]fields.entries":                            fieldsEntries,
		"[method]fields.clone":                              fieldsClone,
		"[method]incoming-request.method":                   incomingRequestMethod,
		"[method]incoming-request.path-with-query":          incomingRequestPath,
		"[method]incoming-request.scheme":                   incomingRequestScheme,
		"[method]incoming-request.authority":                incomingRequestAuthority,
		"[method]incoming-request.headers":                  incomingRequestHeaders,
		"[method]incoming-request.consume":                  incomingRequestConsume,
		"[constructor]outgoing-request":                     outgoingRequestNew,
		"[method]outgoing-request.body":                     outgoingRequestBody,
		"[method]outgoing-request.method":                   outgoingRequestMethod,
		"[method]outgoing-request.set-method":               outgoingRequestSetMethod,
		"[method]outgoing-request.path-with-query":          outgoingRequestPath,
		"[method]outgoing-request.set-path-with-query":      outgoingRequestSetPath,
		"[method]outgoing-request.scheme":                   outgoingRequestScheme,
		"[method]outgoing-request.set-scheme":               outgoingRequestSetScheme,
		"[method]outgoing-request.authority":                outgoingRequestAuthority,
		"[method]outgoing-request.set-authority":            outgoingRequestSetAuthority,
		"[method]outgoing-request.headers":                  outgoingRequestHeaders,
		"[constructor]request-options":                      requestOptionsNew,
		"[method]request-options.connect-timeout":           requestOption(func(o *requestOptions) *component.Value { return &o.connect }, false),
		"[method]request-options.set-connect-timeout":       requestOption(func(o *requestOptions) *component.Value { return &o.connect }, true),
		"[method]request-options.first-byte-timeout":        requestOption(func(o *requestOptions) *component.Value { return &o.firstByte }, false),
		"[method]request-options.set-first-byte-timeout":    requestOption(func(o *requestOptions) *component.Value { return &o.firstByte }, true),
		"[method]request-options.between-bytes-timeout":     requestOption(func(o *requestOptions) *component.Value { return &o.betweenBytes }, false),
		"[method]request-options.set-between-bytes-timeout": requestOption(func(o *requestOptions) *component.Value { return &o.betweenBytes }, true),
		"[static]response-outparam.set":                     responseOutparamSet,
		"[method]incoming-response.status":                  incomingResponseStatus,
		"[method]incoming-response.headers":                 incomingResponseHeaders,
		"[method]incoming-response.consume":                 incomingResponseConsume,
		"[method]incoming-body.stream":                      incomingBodyStream,
		"[static]incoming-body.finish":                      incomingBodyFinish,
		"[method]future-trailers.subscribe":                 futureTrailersSubscribe,
		"[method]future-trailers.get":                       futureTrailersGet,
		"[constructor]outgoing-response":                    outgoingResponseNew,
		"[method]outgoing-response.status-code":             outgoingResponseStatus,
		"[method]outgoing-response.set-status-code":         outgoingResponseSetStatus,
		"[method]outgoing-response.headers":                 outgoingResponseHeaders,
		"[method]outgoing-response.body":                    outgoingResponseBody,
		"[method]outgoing-body.write":                       outgoingBodyWrite,
		"[static]outgoing-body.finish":                      outgoingBodyFinish,
		"[method]future-incoming-response.subscribe":        futureResponseSubscribe,
		"[method]future-incoming-response.get":              futureResponseGet,
		"http-error-code":                                   httpErrorCode,
	},
	"wasi:http/outgoing-handler": {"handle": outgoingHandle},
	"aegis:platform/types":       {},
	"aegis:platform/kv": {
		"get":       kvGet,
		"set":       kvSet,
		"delete":    kvDelete,
		"list-keys": kvListKeys,
	},
	"aegis:platform/objects": {
		"get":       objectsGet,
		"put":       objectsPut,
		"delete":    objectsDelete,
		"list-keys": objectsListKeys,
	},
	"aegis:platform/events":  {"publish": eventsPublish},
	"aegis:platform/secrets": {"get": secretsGet},
	"aegis:platform/invoke":  {"call": invokeCall},
	"aegis:platform/log":     {"write": logWrite},
}

// incomingHandler is the export a component must have.
const incomingHandler = "wasi:http/incoming-handler"

// componentModule is a component ready to instantiate: its bytes, the
// compiled code of its core modules, and what each import is bound to.
type componentModule struct {
	wasm    []byte
	cache   *component.CompileCache
	handler string // the export's full name, with its version
	imports []componentImport
	tags    map[wit.ResourceKey]uint32
}

type componentImport struct {
	iface, name string
	fn          hostFn
	sig         *wit.Signature
}

// compileComponent reads a component's imports and exports, binds every
// import or refuses it, and compiles the component's code by instantiating
// it once, so the first request does not pay for that.
func (e *Engine) compileComponent(ctx context.Context, wasm []byte) (*Module, error) {
	cm, err := bindComponent(wasm)
	if err != nil {
		return nil, err
	}
	cm.cache = component.NewCompileCache()
	// Instantiating compiles every core module (7 s for the JavaScript
	// engine on two cores) and runs the component's start functions, which
	// are the deployer's code: bounded in time so one that never returns
	// fails the deploy instead of holding it. The function's own memory
	// limit and timeout apply from its first instance on (NewFunction).
	ctx, cancel := context.WithTimeoutCause(ctx, componentCompileTimeout, ErrTimeout)
	defer cancel()
	inst := &instance{mem: &linearMemory{limit: 1 << 32}, ctx: ctx}
	ci, err := e.instantiateComponent(ctx, cm, inst)
	if err != nil {
		_ = cm.cache.Close(context.WithoutCancel(ctx))
		e.logger.Warn("component does not instantiate", logkey.Error, err)
		if context.Cause(ctx) == ErrTimeout {
			return nil, fmt.Errorf("%w: the component did not finish starting within %s", ErrInvalidModule, componentCompileTimeout)
		}
		return nil, fmt.Errorf("%w: the component does not instantiate: %s", ErrInvalidModule, firstLine(err))
	}
	_ = ci.in.Close(context.WithoutCancel(ctx))
	m := &Module{comp: cm, style: StyleComponent}
	for _, imp := range cm.imports {
		if abiName, found := componentCapabilities[versionless(imp.iface)+"#"+imp.name]; found {
			m.hostImports = append(m.hostImports, abiName)
		}
	}
	slices.Sort(m.hostImports)
	m.hostImports = slices.Compact(m.hostImports)
	return m, nil
}

// componentCapabilities names the core ABI's host function for each
// capability a component can import, so what least-privilege advice reads
// of a module (Module.HostImports) means the same for both kinds.
var componentCapabilities = map[string]string{
	"aegis:platform/kv#get":             "kv_get",
	"aegis:platform/kv#set":             "kv_put",
	"aegis:platform/kv#delete":          "kv_delete",
	"aegis:platform/kv#list-keys":       "kv_list",
	"aegis:platform/objects#get":        "object_get",
	"aegis:platform/objects#put":        "object_put",
	"aegis:platform/objects#delete":     "object_delete",
	"aegis:platform/objects#list-keys":  "object_list",
	"aegis:platform/events#publish":     "publish",
	"aegis:platform/secrets#get":        "secret",
	"aegis:platform/invoke#call":        "invoke",
	"aegis:platform/log#write":          "log",
	"wasi:http/outgoing-handler#handle": "fetch",
}

// bindComponent matches a component's imports with this host's functions.
func bindComponent(wasm []byte) (cm *componentModule, err error) {
	// The engine's decoder reads what a deployer uploaded: should it trip
	// over some input, the deploy fails rather than the server.
	defer func() {
		if r := recover(); r != nil {
			cm, err = nil, fmt.Errorf("%w: the component's types cannot be read", ErrInvalidModule)
		}
	}()
	pkg, err := wit.FromComponent(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: the component's types cannot be read: %s", ErrInvalidModule, firstLine(err))
	}
	w := pkg.World("root")
	if w == nil {
		return nil, fmt.Errorf("%w: the component declares no world", ErrInvalidModule)
	}
	cm = &componentModule{wasm: wasm, tags: map[wit.ResourceKey]uint32{}}
	refusedTag := tagRefused
	for _, imp := range w.Imports {
		if imp.Interface == nil {
			return nil, fmt.Errorf("%w: component imports function %q, which Aegis does not provide (docs/components.md lists what it does)", ErrUnknownImport, imp.Name)
		}
		base := versionless(imp.Interface.Name)
		_, provided := componentFuncs[base]
		refused := refusedInterfaces[base]
		if !provided && !refused {
			return nil, fmt.Errorf("%w: component imports %s, which Aegis does not provide (docs/components.md lists what it does)", ErrUnknownImport, imp.Interface.Name)
		}
		for _, r := range imp.Interface.Resources {
			key := wit.ResourceKey{Interface: r.Interface, Name: r.Name}
			if _, seen := cm.tags[key]; seen {
				continue
			}
			tag, known := knownResources[versionless(r.Interface)+"#"+r.Name]
			if !known {
				if !refused {
					return nil, fmt.Errorf("%w: component imports resource %s of %s, which Aegis does not provide", ErrUnknownImport, r.Name, imp.Interface.Name)
				}
				tag = refusedTag
				refusedTag++
			}
			cm.tags[key] = tag
		}
	}
	for _, imp := range w.Imports {
		base := versionless(imp.Interface.Name)
		for _, f := range imp.Interface.Funcs {
			fn := componentFuncs[base][f.Name]
			if fn == nil {
				if !refusedInterfaces[base] {
					return nil, fmt.Errorf("%w: component imports %s function %q, which Aegis does not provide", ErrUnknownImport, imp.Interface.Name, f.Name)
				}
				fn = refusedFunc(imp.Interface.Name, f)
			}
			sig, err := f.Signature(wit.Tags(cm.tags))
			if err != nil {
				return nil, fmt.Errorf("%w: %s function %q: %s", ErrInvalidModule, imp.Interface.Name, f.Name, firstLine(err))
			}
			cm.imports = append(cm.imports, componentImport{iface: imp.Interface.Name, name: f.Name, fn: fn, sig: sig})
		}
	}
	for _, ex := range w.Exports {
		if versionless(ex.Name) == incomingHandler {
			cm.handler = ex.Name
		}
	}
	if cm.handler == "" {
		return nil, fmt.Errorf("%w: the component does not export %s, the interface a function answers requests through (docs/components.md)", ErrInvalidModule, incomingHandler)
	}
	return cm, nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// componentCompileTimeout bounds the instantiation that compiles a
// component at deploy.
const componentCompileTimeout = 2 * time.Minute

// componentInstance is one instantiated component and its host.
type componentInstance struct {
	in   *component.Instance
	host *componentHost
}

func (e *Engine) instantiateComponent(ctx context.Context, cm *componentModule, inst *instance) (*componentInstance, error) {
	h := newComponentHost(inst, cm)
	opts := make([]component.Option, 0, len(cm.imports)+2*len(cm.tags)+2)
	opts = append(opts,
		component.WithCompileCache(cm.cache),
		component.WithResourcesHook(func(t *component.HandleTable) { h.table = t }))
	dtors := map[uint32]bool{}
	for key, tag := range cm.tags {
		opts = append(opts, component.WithResourceTag(key.Interface, key.Name, tag))
		if !dtors[tag] {
			dtors[tag] = true
			opts = append(opts, component.WithHostResourceDtor(tag, h.drop))
		}
	}
	for _, imp := range cm.imports {
		opts = append(opts, component.WithImportCustom(imp.iface, imp.name, bindHostFn(h, imp), imp.sig.Desc, imp.sig.Types.Resolver()))
	}
	in, err := component.Instantiate(ctx, e.runtime, cm.wasm, opts...)
	if err != nil {
		return nil, err
	}
	return &componentInstance{in: in, host: h}, nil
}

// bindHostFn is imp's implementation for h's instance. A host function
// that meets arguments it did not expect traps the guest; it never takes
// the server down.
func bindHostFn(h *componentHost, imp componentImport) component.HostFunc {
	want := len(imp.sig.Desc.Params)
	return func(ctx context.Context, args []component.Value) (results []component.Value, err error) {
		if len(args) != want {
			return nil, fmt.Errorf("%s %s: %d arguments, want %d", imp.iface, imp.name, len(args), want)
		}
		defer func() {
			if r := recover(); r != nil {
				results, err = nil, fmt.Errorf("%s %s: %v", imp.iface, imp.name, r)
			}
		}()
		return imp.fn(h, ctx, imp.sig, args)
	}
}

// newComponent instantiates the function's component for one instance.
func (f *Function) newComponent(ctx context.Context) (*instance, error) {
	inst := &instance{fn: f, mem: &linearMemory{limit: f.limits.memory}, ctx: ctx}
	budget := &memoryBudget{limit: f.limits.memory, exceeded: &inst.mem.exceeded}
	ci, err := f.engine.instantiateComponent(api.WithMemoryAllocator(ctx, budget), f.module.comp, inst)
	if err != nil {
		return nil, f.instantiateError(ctx, inst, err)
	}
	inst.comp = ci
	return inst, nil
}

func (ci *componentInstance) close() { _ = ci.in.Close(context.Background()) }

// invokeComponent runs one invocation on a component instance.
func (f *Function) invokeComponent(ctx context.Context, inv *invocation) (*Response, error) {
	inst, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	inst.current, inst.ctx = inv, inv.ctx
	resp, callErr := inst.comp.serve(inv)
	inst.comp.host.endInvocation()
	inst.current, inst.ctx = nil, nil
	inv.flushOutput()
	inst.uses++
	if err := f.outcome(ctx, inv, inst, callErr, 0); err != nil {
		inst.close()
		return nil, err
	}
	f.release(inst)
	return resp, nil
}

// serve hands the invocation's request to the component's handler and
// reads back the response it set.
func (ci *componentInstance) serve(inv *invocation) (*Response, error) {
	h := ci.host
	req, err := h.add(incomingFrom(inv.req))
	if err != nil {
		return nil, err
	}
	out := &responseOutparam{}
	outRep, err := h.add(out)
	if err != nil {
		return nil, err
	}
	table := ci.in.ResourcesFor(h.mod.handler)
	reqHandle := table.NewOwn(tagIncomingRequest, req)
	outHandle := table.NewOwn(tagResponseOutparam, outRep)
	if _, err := ci.in.CallExport(inv.ctx, h.mod.handler, "handle", reqHandle, outHandle); err != nil {
		return nil, err
	}
	switch {
	case !out.set:
		return nil, errors.New("the handler returned without setting a response")
	case out.err:
		return nil, errors.New("the handler answered with an error instead of a response")
	}
	resp := &Response{Status: int(out.resp.status)}
	if n := len(out.resp.headers.names); n > 0 {
		resp.Headers = make(map[string]string, n)
		for i, name := range out.resp.headers.names {
			name = strings.ToLower(name)
			value := string(out.resp.headers.values[i])
			if prev, seen := resp.Headers[name]; seen {
				value = prev + "\n" + value
			}
			resp.Headers[name] = value
		}
		if err := checkResponseHeaders(resp.Headers); err != nil {
			return nil, fmt.Errorf("response: %w", err)
		}
	}
	if out.resp.body != nil {
		resp.Body = out.resp.body.buf.Bytes()
	}
	return resp, nil
}

// incomingFrom is the request a component sees. Events, object changes
// and schedules arrive as a POST to "/" whose aegis-* headers say what
// happened; the verified caller of an HTTP request is in aegis-identity.
// Headers named aegis-* that came from outside are dropped first, so a
// function can trust the ones it sees.
func incomingFrom(r *Request) *incomingRequest {
	in := &incomingRequest{method: r.Method, pathQuery: r.Path, authority: "localhost", headers: &httpFields{immutable: true}, body: r.Body}
	add := func(name, value string) {
		in.headers.names = append(in.headers.names, name)
		in.headers.values = append(in.headers.values, []byte(value))
	}
	for name, values := range r.Headers {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "aegis-") {
			continue
		}
		if lower == "host" && len(values) > 0 {
			in.authority = values[0]
		}
		for _, v := range values {
			add(lower, v)
		}
	}
	if len(r.Query) > 0 {
		in.pathQuery += "?" + url.Values(r.Query).Encode()
	}
	add("aegis-request-id", r.RequestID)
	if r.Kind != KindHTTP && r.Kind != "" {
		in.method, in.pathQuery = "POST", "/"
		add("aegis-kind", r.Kind)
		if r.Topic != "" {
			add("aegis-topic", r.Topic)
		}
		if r.Key != "" {
			add("aegis-object-key", r.Key)
			add("aegis-object-operation", r.Operation)
		}
		if r.Attempt > 0 {
			add("aegis-attempt", strconv.Itoa(r.Attempt))
		}
	}
	if r.Identity != nil {
		if b, err := json.Marshal(r.Identity); err == nil {
			add("aegis-identity", string(b))
		}
	}
	if in.method == "" {
		in.method = "GET"
	}
	if in.pathQuery == "" {
		in.pathQuery = "/"
	}
	return in
}

// memoryBudget holds a component's memories (it may have several, one
// per core module) to the function's memory limit together.
type memoryBudget struct {
	limit    uint64
	exceeded *atomic.Bool
	mems     []*budgetMemory
}

type budgetMemory struct {
	budget *memoryBudget
	buf    []byte
}

// Allocate implements the engine's memory allocator: one call per memory.
func (b *memoryBudget) Allocate(_, _ uint64) allocatedMemory {
	m := &budgetMemory{budget: b}
	b.mems = append(b.mems, m)
	return m
}

// Reallocate implements allocatedMemory.
func (m *budgetMemory) Reallocate(size uint64) []byte {
	total := size
	for _, other := range m.budget.mems {
		if other != m {
			total += uint64(len(other.buf))
		}
	}
	if total > m.budget.limit {
		m.budget.exceeded.Store(true)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	buf := make([]byte, size, max(size, min(2*uint64(cap(m.buf)), m.budget.limit)))
	copy(buf, m.buf)
	m.buf = buf
	return buf
}

// Free implements allocatedMemory.
func (m *budgetMemory) Free() { m.buf = nil }

// close releases the compiled code of the component's core modules.
func (cm *componentModule) close(ctx context.Context) error { return cm.cache.Close(ctx) }
