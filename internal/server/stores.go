package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/vault"
)

// eventSealer is the vault as the bus seals event payloads with it.
type eventSealer struct{ *vault.Vault }

func (eventSealer) IsCorrupt(err error) bool { return errors.Is(err, vault.ErrCorrupt) }

func tableAD(table, key string) []byte { return []byte("table\x00" + table + "\x00" + key) }

func objectAD(key string) []byte { return []byte("object\x00" + key) }

// tables maps an app's tables to JetStream KV buckets, one bucket per
// (app, table), so one app can never read another's data by naming it.
// App names are [a-z0-9-] and table names [A-Za-z0-9_-], so "t_<app>_<table>"
// is unambiguous. Values are stored sealed with the app's data key, bound
// to their table and key; keys stay in the clear, since listing by prefix
// needs them (docs/vault.md).
type tables struct {
	node *jetstream.Node
	data *vault.Vault
}

// maxTableValue is a bucket's cap on one stored value: the largest value a
// function may write (capability.DefaultMaxValueSize) once sealed.
const maxTableValue = 1<<20 + vault.DataOverhead

func (t *tables) bucket(ctx context.Context, app, table string) (*jetstream.Bucket, error) {
	b, err := t.node.Bucket(ctx, "t_"+app+"_"+table, jetstream.BucketOptions{History: 1, MaxValueSize: maxTableValue})
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", table, err)
	}
	return b, nil
}

func (t *tables) Get(ctx context.Context, app, table, key string) ([]byte, error) {
	b, err := t.bucket(ctx, app, table)
	if err != nil {
		return nil, err
	}
	v, _, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return t.data.OpenData(ctx, app, tableAD(table, key), v)
}

func (t *tables) Put(ctx context.Context, app, table, key string, v []byte) error {
	b, err := t.bucket(ctx, app, table)
	if err != nil {
		return err
	}
	sealed, err := t.data.SealData(ctx, app, tableAD(table, key), v)
	if err != nil {
		return err
	}
	_, err = b.Put(ctx, key, sealed)
	return err
}

func (t *tables) Delete(ctx context.Context, app, table, key string) error {
	b, err := t.bucket(ctx, app, table)
	if err != nil {
		return err
	}
	return b.Delete(ctx, key)
}

func (t *tables) Keys(ctx context.Context, app, table, prefix string) ([]string, error) {
	b, err := t.bucket(ctx, app, table)
	if err != nil {
		return nil, err
	}
	return b.Keys(ctx, prefix)
}

// objects maps an app's objects to one JetStream object store per app and
// announces every change to object triggers. Objects are stored sealed
// with the app's data key, bound to their name; names stay in the clear.
type objects struct {
	node *jetstream.Node
	bus  *bus.Bus
	data *vault.Vault
}

func (o *objects) store(ctx context.Context, app string) (*jetstream.ObjectStore, error) {
	s, err := o.node.ObjectStore(ctx, "o_"+app)
	if err != nil {
		return nil, fmt.Errorf("open objects of %s: %w", app, err)
	}
	return s, nil
}

func (o *objects) Get(ctx context.Context, app, key string) ([]byte, error) {
	s, err := o.store(ctx, app)
	if err != nil {
		return nil, err
	}
	sealed, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return o.data.OpenData(ctx, app, objectAD(key), sealed)
}

func (o *objects) Put(ctx context.Context, c *sandbox.Caller, key string, data []byte) error {
	s, err := o.store(ctx, c.App)
	if err != nil {
		return err
	}
	if err := o.bus.AdmitObjectChange(ctx, c); err != nil {
		return err
	}
	sealed, err := o.data.SealData(ctx, c.App, objectAD(key), data)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, key, sealed); err != nil {
		return err
	}
	return o.bus.ObjectChanged(ctx, c, key, "put")
}

func (o *objects) Delete(ctx context.Context, c *sandbox.Caller, key string) error {
	s, err := o.store(ctx, c.App)
	if err != nil {
		return err
	}
	if err := o.bus.AdmitObjectChange(ctx, c); err != nil {
		return err
	}
	if err := s.Delete(ctx, key); err != nil {
		return err
	}
	return o.bus.ObjectChanged(ctx, c, key, "delete")
}

func (o *objects) List(ctx context.Context, app, prefix string) ([]string, error) {
	s, err := o.store(ctx, app)
	if err != nil {
		return nil, err
	}
	infos, err := s.List(ctx, prefix)
	if err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return []string{}, nil
		}
		return nil, err
	}
	keys := make([]string, 0, len(infos))
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys, nil
}
