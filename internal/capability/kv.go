package capability

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// KVGet reads a key. Read is granted by the table appearing in KV.Read or
// KV.Write (a writer may read back what it wrote).
func (h *Host) KVGet(ctx context.Context, c *sandbox.Caller, table, key string) ([]byte, error) {
	if err := h.checkKV(ctx, c, "kv.get", table, key, false); err != nil {
		return nil, err
	}
	if h.cfg.Tables == nil {
		return nil, errNoBackend("kv")
	}
	v, err := h.cfg.Tables.Get(ctx, c.App, table, key)
	if err != nil {
		return nil, fmt.Errorf("kv get %s/%s: %w", table, key, err)
	}
	return v, nil
}

// KVPut writes a key; it needs the table in KV.Write.
func (h *Host) KVPut(ctx context.Context, c *sandbox.Caller, table, key string, value []byte) error {
	if err := h.checkKV(ctx, c, "kv.put", table, key, true); err != nil {
		return err
	}
	if len(value) > h.cfg.MaxValueSize {
		return fmt.Errorf("kv put %s/%s: value of %d bytes over the %d byte cap: %w",
			table, key, len(value), h.cfg.MaxValueSize, aegis.ErrLimitExceeded)
	}
	if h.cfg.Tables == nil {
		return errNoBackend("kv")
	}
	if err := h.cfg.Tables.Put(ctx, c.App, table, key, value); err != nil {
		return fmt.Errorf("kv put %s/%s: %w", table, key, err)
	}
	return nil
}

// KVDelete deletes a key; it needs the table in KV.Write.
func (h *Host) KVDelete(ctx context.Context, c *sandbox.Caller, table, key string) error {
	if err := h.checkKV(ctx, c, "kv.delete", table, key, true); err != nil {
		return err
	}
	if h.cfg.Tables == nil {
		return errNoBackend("kv")
	}
	if err := h.cfg.Tables.Delete(ctx, c.App, table, key); err != nil {
		return fmt.Errorf("kv delete %s/%s: %w", table, key, err)
	}
	return nil
}

// KVList lists the keys of a table that start with prefix ("" for all);
// it needs read access to the table.
func (h *Host) KVList(ctx context.Context, c *sandbox.Caller, table, prefix string) ([]string, error) {
	if err := validateTable(table); err != nil {
		return nil, err
	}
	if err := validateKVPrefix(prefix); err != nil {
		return nil, err
	}
	if err := h.authorizeKV(ctx, c, "kv.list", table, prefix+"*", false); err != nil {
		return nil, err
	}
	if h.cfg.Tables == nil {
		return nil, errNoBackend("kv")
	}
	keys, err := h.cfg.Tables.Keys(ctx, c.App, table, prefix)
	if err != nil {
		return nil, fmt.Errorf("kv list %s: %w", table, err)
	}
	return keys, nil
}

// checkKV validates the names first, so a denial is only ever logged for a
// well-formed table and key, then checks the grant.
func (h *Host) checkKV(ctx context.Context, c *sandbox.Caller, capability, table, key string, write bool) error {
	if err := validateTable(table); err != nil {
		return err
	}
	if err := validateKVKey(key); err != nil {
		return err
	}
	return h.authorizeKV(ctx, c, capability, table, key, write)
}

func (h *Host) authorizeKV(ctx context.Context, c *sandbox.Caller, capability, table, key string, write bool) error {
	g := grantsOf(c)
	allowed := false
	verb := "read from"
	if write {
		verb = "write to"
	}
	if g != nil {
		if write {
			allowed = matchAny(table, g.KV.Write)
		} else {
			allowed = matchAny(table, g.KV.Read, g.KV.Write)
		}
	}
	if allowed {
		h.graphKV(c, table, write)
		return nil
	}
	return h.deny(ctx, c, denial{
		capability: capability,
		resource:   table + "/" + key,
		reason:     "no kv grant",
		msg:        fmt.Sprintf("kv %s table %q not granted", verb, table),
	})
}

func errNoBackend(what string) error {
	return fmt.Errorf("%s store not configured: %w", what, aegis.ErrUnavailable)
}
