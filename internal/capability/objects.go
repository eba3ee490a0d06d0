package capability

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis/internal/sandbox"
)

// ObjectGet reads an object; it needs a read or write pattern covering the
// normalized key.
func (h *Host) ObjectGet(ctx context.Context, c *sandbox.Caller, key string) ([]byte, error) {
	k, err := h.checkObject(ctx, c, "objects.get", key, false)
	if err != nil {
		return nil, err
	}
	if h.cfg.Objects == nil {
		return nil, errNoBackend("object")
	}
	data, err := h.cfg.Objects.Get(ctx, c.App, k)
	if err != nil {
		return nil, fmt.Errorf("object get %s: %w", k, err)
	}
	return data, nil
}

// ObjectPut writes an object; it needs a write pattern covering the key.
func (h *Host) ObjectPut(ctx context.Context, c *sandbox.Caller, key string, data []byte) error {
	k, err := h.checkObject(ctx, c, "objects.put", key, true)
	if err != nil {
		return err
	}
	if h.cfg.Objects == nil {
		return errNoBackend("object")
	}
	if err := h.cfg.Objects.Put(ctx, c, k, data); err != nil {
		return fmt.Errorf("object put %s: %w", k, err)
	}
	return nil
}

// ObjectDelete deletes an object; it needs a write pattern covering the key.
func (h *Host) ObjectDelete(ctx context.Context, c *sandbox.Caller, key string) error {
	k, err := h.checkObject(ctx, c, "objects.delete", key, true)
	if err != nil {
		return err
	}
	if h.cfg.Objects == nil {
		return errNoBackend("object")
	}
	if err := h.cfg.Objects.Delete(ctx, c, k); err != nil {
		return fmt.Errorf("object delete %s: %w", k, err)
	}
	return nil
}

// ObjectList lists object keys starting with prefix. It is allowed only
// when one read or write pattern covers every key the prefix could return
// ("*", or "images/*" for the prefix "images/2024/"), so a list can never
// reveal the names of objects the function could not read.
func (h *Host) ObjectList(ctx context.Context, c *sandbox.Caller, prefix string) ([]string, error) {
	p, err := normalizeObjectPrefix(prefix)
	if err != nil {
		return nil, h.objectKeyError(ctx, c, "objects.list", prefix, err)
	}
	g := grantsOf(c)
	if g == nil || !coversPrefix(p, g.Objects.Read, g.Objects.Write) {
		return nil, h.deny(ctx, c, denial{
			capability: "objects.list",
			resource:   p + "*",
			reason:     "no object grant covers the prefix",
			msg:        fmt.Sprintf("objects list of prefix %q not granted", p),
		})
	}
	h.graphList(c, p)
	if h.cfg.Objects == nil {
		return nil, errNoBackend("object")
	}
	keys, err := h.cfg.Objects.List(ctx, c.App, p)
	if err != nil {
		return nil, fmt.Errorf("object list %s: %w", p, err)
	}
	return keys, nil
}

// checkObject normalizes the key and checks the grant against the
// normalized form; it returns the key to hand to the store.
func (h *Host) checkObject(ctx context.Context, c *sandbox.Caller, capability, key string, write bool) (string, error) {
	k, err := NormalizeObjectKey(key)
	if err != nil {
		return "", h.objectKeyError(ctx, c, capability, key, err)
	}
	g := grantsOf(c)
	allowed := false
	verb := "read of"
	if write {
		verb = "write to"
	}
	if g != nil {
		if write {
			allowed = matchAny(k, g.Objects.Write)
		} else {
			allowed = matchAny(k, g.Objects.Read, g.Objects.Write)
		}
	}
	if !allowed {
		return "", h.deny(ctx, c, denial{
			capability: capability,
			resource:   k,
			reason:     "no object grant",
			msg:        fmt.Sprintf("objects %s key %q not granted", verb, k),
		})
	}
	h.graphObject(c, k, write)
	return k, nil
}

// objectKeyError passes a malformed key through as invalid, and also
// records a path traversal attempt as a security event: it is an attack
// signal, not a typo.
func (h *Host) objectKeyError(ctx context.Context, c *sandbox.Caller, capability, key string, err error) error {
	if isTraversal(err) {
		h.security(ctx, c, denial{capability: capability, resource: key, reason: "path traversal"})
	}
	return err
}
