package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

// ObjectStore holds blobs by key, chunked over a stream so objects may be
// larger than a NATS message. It is safe for concurrent use.
type ObjectStore struct {
	name string
	os   jetstream.ObjectStore
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     uint64
	Modified time.Time
}

// ObjectStore returns the named object store, creating it on first use.
func (n *Node) ObjectStore(ctx context.Context, name string) (*ObjectStore, error) {
	op := "open object store " + name
	if !ValidBucketName(name) {
		return nil, fmt.Errorf("%s: invalid name: %w", op, aegis.ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	n.mu.Lock()
	o, ok := n.objects[name]
	n.mu.Unlock()
	if ok {
		return o, nil
	}

	// Looked up and, when missing, created within one retried attempt:
	// in a cluster another member may be creating it at this moment, and
	// a request racing that creation may go unanswered (retryStoreCreate).
	var os jetstream.ObjectStore
	err := retryStoreCreate(ctx, func(ctx context.Context) (err error) {
		os, err = n.js.ObjectStore(ctx, name)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return err
		}
		err = n.placed(ctx, "OBJ_"+name, func(ctx context.Context, replicas int) (err error) {
			os, err = n.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket:   name,
				Storage:  storage,
				Replicas: replicas,
			})
			return err
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created concurrently by another node or goroutine.
			os, err = n.js.ObjectStore(ctx, name)
		}
		return err
	})
	if err == nil && n.replicas > 1 {
		err = retryStoreCreate(ctx, func(ctx context.Context) (err error) {
			if err := n.leaderReads(ctx, "OBJ_"+name); err != nil {
				return err
			}
			os, err = n.js.ObjectStore(ctx, name) // bound again: reads from the leader
			return err
		})
	}
	if err != nil {
		return nil, wrap(op, err)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if o, ok := n.objects[name]; ok {
		return o, nil
	}
	o = &ObjectStore{name: name, os: os}
	n.objects[name] = o
	return o, nil
}

// Name is the object store's name.
func (o *ObjectStore) Name() string { return o.name }

func (o *ObjectStore) op(verb, key string) string {
	return fmt.Sprintf("%s object %s/%s", verb, o.name, key)
}

func checkObjectKey(op, key string) error {
	if key == "" {
		return fmt.Errorf("%s: empty key: %w", op, aegis.ErrInvalidArgument)
	}
	return nil
}

// Get returns the object's bytes, or aegis.ErrNotFound.
func (o *ObjectStore) Get(ctx context.Context, key string) ([]byte, error) {
	op := o.op("get", key)
	if err := checkObjectKey(op, key); err != nil {
		return nil, err
	}
	data, err := o.os.GetBytes(ctx, key)
	if err != nil {
		return nil, wrap(op, err)
	}
	return data, nil
}

// Put stores data under key, replacing any previous object.
func (o *ObjectStore) Put(ctx context.Context, key string, data []byte) error {
	op := o.op("put", key)
	if err := checkObjectKey(op, key); err != nil {
		return err
	}
	_, err := o.os.PutBytes(ctx, key, data)
	return wrap(op, err)
}

// Delete removes the object, or fails with aegis.ErrNotFound if there is
// none (including one already deleted).
func (o *ObjectStore) Delete(ctx context.Context, key string) error {
	op := o.op("delete", key)
	if err := checkObjectKey(op, key); err != nil {
		return err
	}
	// nats.go deletes an already deleted object again without complaint;
	// look first so a missing object is reported as such.
	if _, err := o.os.GetInfo(ctx, key); err != nil {
		return wrap(op, err)
	}
	return wrap(op, o.os.Delete(ctx, key))
}

// Has reports whether an object exists under key.
func (o *ObjectStore) Has(ctx context.Context, key string) (bool, error) {
	op := o.op("stat", key)
	if err := checkObjectKey(op, key); err != nil {
		return false, err
	}
	_, err := o.os.GetInfo(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, nil
	default:
		return false, wrap(op, err)
	}
}

// List returns the objects whose key starts with prefix, sorted by key. An
// empty result is an empty slice, not an error.
func (o *ObjectStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	op := fmt.Sprintf("list objects %s/%s*", o.name, prefix)
	ctx, cancel := withTimeout(ctx)
	defer cancel()

	infos, err := o.os.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return []ObjectInfo{}, nil
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]ObjectInfo, 0, len(infos))
	for _, i := range infos {
		if i.Deleted || !strings.HasPrefix(i.Name, prefix) {
			continue
		}
		out = append(out, ObjectInfo{Key: i.Name, Size: i.Size, Modified: i.ModTime})
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
