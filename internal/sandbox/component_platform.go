//go:build !aegis_wazero

package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/samyfodil/wazy/component"
	"github.com/samyfodil/wazy/component/wit"
)

// aegis:platform (wit/aegis-platform/platform.wit): the capabilities of
// the core ABI for components. Each call goes to the same Host method, with
// the same Caller, as the matching core host call, so grants, caps, the
// call graph and secret scrubbing are the same whichever kind of module
// the function is.

// platformError is the types.error case for err, or a trap for an error
// the guest has no business seeing (logged, as inv.fail logs it).
func (h *componentHost) platformError(sig *wit.Signature, capability string, err error) ([]component.Value, error) {
	name := ""
	switch {
	case errors.Is(err, aegis.ErrPermissionDenied):
		name = "denied"
	case errors.Is(err, aegis.ErrInvalidArgument), errors.Is(err, aegis.ErrNotFound):
		name = "invalid"
	case errors.Is(err, aegis.ErrLimitExceeded):
		name = "limit-exceeded"
	case errors.Is(err, aegis.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		name = "unavailable"
	}
	msg := err.Error()
	if name == "" {
		if inv := h.invocation(); inv != nil {
			inv.fn.logger.LogAttrs(inv.ctx, slog.LevelError, "host call failed",
				slog.String(logkey.RequestID, inv.caller.RequestID),
				slog.String(logkey.Capability, capability),
				slog.Any(logkey.Error, err))
		}
		name, msg = "unavailable", "internal error"
	}
	if len(msg) > maxErrMessage {
		msg = msg[:maxErrMessage]
	}
	v, verr := variant(sig, "error", name, msg)
	if verr != nil {
		return nil, verr
	}
	return fail(v), nil
}

// platformCall runs one capability call for the invocation in progress.
func (h *componentHost) platformCall(sig *wit.Signature, capability string, call func(inv *invocation) (component.Value, error)) ([]component.Value, error) {
	inv := h.invocation()
	if inv == nil {
		return h.platformError(sig, capability, errors.New("capabilities are only available while handling a request"))
	}
	if inv.host == nil {
		return h.platformError(sig, capability, errNoHost)
	}
	v, err := call(inv)
	if err != nil {
		return h.platformError(sig, capability, err)
	}
	return ok(v), nil
}

// names reads the string arguments from the first on.
func names(args []component.Value, n int, what string) ([]string, error) {
	out := make([]string, n)
	for i := range n {
		s, err := argString(args[i], what)
		if err != nil {
			return nil, err
		}
		if len(s) > maxNameLen {
			return nil, errors.New(what + ": name longer than 4 KiB")
		}
		out[i] = s
	}
	return out, nil
}

// optionalValue is a get's answer: none for a key that is not there.
func optionalValue(v []byte, err error) (component.Value, error) {
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func keyList(keys []string, err error) (component.Value, error) {
	if err != nil {
		return nil, err
	}
	out := make([]component.Value, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out, nil
}

func kvGet(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 2, "kv.get")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "kv", func(inv *invocation) (component.Value, error) {
		return optionalValue(inv.host.KVGet(inv.ctx, &inv.caller, n[0], n[1]))
	})
}

func kvSet(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 2, "kv.set")
	if err != nil {
		return nil, err
	}
	value, err := argBytes(args[2], "kv.set")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "kv", func(inv *invocation) (component.Value, error) {
		return nil, inv.host.KVPut(inv.ctx, &inv.caller, n[0], n[1], value)
	})
}

func kvDelete(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 2, "kv.delete")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "kv", func(inv *invocation) (component.Value, error) {
		return nil, inv.host.KVDelete(inv.ctx, &inv.caller, n[0], n[1])
	})
}

func kvListKeys(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 2, "kv.list-keys")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "kv", func(inv *invocation) (component.Value, error) {
		return keyList(inv.host.KVList(inv.ctx, &inv.caller, n[0], n[1]))
	})
}

func objectsGet(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 1, "objects.get")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "objects", func(inv *invocation) (component.Value, error) {
		return optionalValue(inv.host.ObjectGet(inv.ctx, &inv.caller, n[0]))
	})
}

func objectsPut(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 1, "objects.put")
	if err != nil {
		return nil, err
	}
	data, err := argBytes(args[1], "objects.put")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "objects", func(inv *invocation) (component.Value, error) {
		return nil, inv.host.ObjectPut(inv.ctx, &inv.caller, n[0], data)
	})
}

func objectsDelete(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 1, "objects.delete")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "objects", func(inv *invocation) (component.Value, error) {
		return nil, inv.host.ObjectDelete(inv.ctx, &inv.caller, n[0])
	})
}

func objectsListKeys(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 1, "objects.list-keys")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "objects", func(inv *invocation) (component.Value, error) {
		return keyList(inv.host.ObjectList(inv.ctx, &inv.caller, n[0]))
	})
}

func eventsPublish(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 1, "events.publish")
	if err != nil {
		return nil, err
	}
	data, err := argBytes(args[1], "events.publish")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "publish", func(inv *invocation) (component.Value, error) {
		return nil, inv.host.Publish(inv.ctx, &inv.caller, n[0], data)
	})
}

func secretsGet(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 1, "secrets.get")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "secrets", func(inv *invocation) (component.Value, error) {
		v, err := inv.host.Secret(inv.ctx, &inv.caller, n[0])
		if err == nil {
			// Scrubbed from the invocation's log lines from now on.
			inv.secrets.add(n[0], v)
		}
		return optionalValue(v, err)
	})
}

func invokeCall(h *componentHost, ctx context.Context, sig *wit.Signature, args []component.Value) ([]component.Value, error) {
	n, err := names(args, 2, "invoke.call")
	if err != nil {
		return nil, err
	}
	headers, err := stringPairs(args[2], "invoke.call")
	if err != nil {
		return nil, err
	}
	body, err := argBytes(args[3], "invoke.call")
	if err != nil {
		return nil, err
	}
	return h.platformCall(sig, "invoke", func(inv *invocation) (component.Value, error) {
		resp, err := inv.host.Invoke(inv.ctx, &inv.caller, &InvokeRequest{Method: n[0], Path: n[1], Headers: headers, Body: body})
		if err != nil {
			return nil, err
		}
		if resp == nil {
			resp = &InvokeResponse{Status: http.StatusOK}
		}
		hs := []component.Value{}
		for k, v := range resp.Headers {
			for _, line := range FieldLines(v) {
				hs = append(hs, []component.Value{k, line})
			}
		}
		b := resp.Body
		if b == nil {
			b = []byte{}
		}
		return []component.Value{uint32(resp.Status), hs, b}, nil
	})
}

// stringPairs reads a list<tuple<string, string>> as headers; a name
// given twice keeps its values joined by a comma, as HTTP allows.
func stringPairs(v component.Value, what string) (map[string]string, error) {
	list, isList := v.([]component.Value)
	if !isList {
		return nil, errors.New(what + ": want a list of pairs")
	}
	if len(list) > maxFieldLines {
		return nil, errors.New(what + ": too many headers")
	}
	out := make(map[string]string, len(list))
	for _, e := range list {
		pair, isPair := e.([]component.Value)
		if !isPair || len(pair) != 2 {
			return nil, errors.New(what + ": want a list of pairs")
		}
		k, err := argString(pair[0], what)
		if err != nil {
			return nil, err
		}
		val, err := argString(pair[1], what)
		if err != nil {
			return nil, err
		}
		if prev, seen := out[k]; seen {
			val = prev + ", " + val
		}
		out[k] = val
	}
	return out, nil
}

func logWrite(h *componentHost, _ context.Context, _ *wit.Signature, args []component.Value) ([]component.Value, error) {
	level, _ := args[0].(uint32)
	msg, err := argString(args[1], "log.write")
	if err != nil {
		return nil, err
	}
	if len(msg) > maxLogLine {
		msg = msg[:maxLogLine]
	}
	lvl := logLevel(int32(level))
	inv := h.invocation()
	if inv == nil {
		h.inst.initOutput(lvl, []byte(msg))
		return nil, nil
	}
	if lvl >= slog.LevelError {
		inv.errorLine = msg
	}
	inv.guestLog(lvl, msg)
	return nil, nil
}
