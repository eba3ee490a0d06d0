package jetstream

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

// The naming rules nats.go applies to buckets and keys, repeated here so
// callers can validate user input before it reaches NATS and report it as
// their own invalid argument.
var (
	bucketNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

// ValidBucketName reports whether s can name a key-value bucket or object
// store: letters, digits, '-' and '_'.
func ValidBucketName(s string) bool { return bucketNameRe.MatchString(s) }

// ValidKey reports whether s can be a key: letters, digits and "-/_=.",
// with dots only between non-empty tokens (keys are subject tokens).
func ValidKey(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	// A loop, not a regular expression: every KV operation checks its key,
	// among them the replay record of every event delivered.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-/_=.", c) >= 0) {
			return false
		}
	}
	return true
}

// BucketOptions configure a key-value bucket when it is first created in
// this process; later calls for the same name reuse the cached handle.
type BucketOptions struct {
	// History is how many revisions per key are kept (1 when zero, max 64).
	History int
	// TTL expires values this long after their last write; zero keeps them.
	TTL time.Duration
	// MaxValueSize caps one value in bytes; zero means the server's limit.
	MaxValueSize int32
	Description  string
	// KeyTTLs lets CreateTTL give each key its own, shorter, time to live
	// (per-message TTLs, NATS 2.11 and later).
	KeyTTLs bool
}

// keyTTLMarker is how long the server keeps the marker it writes when a
// key with its own TTL expires: the marker only tells watchers, which no
// caller of KeyTTLs buckets uses, so it goes as soon as allowed.
const keyTTLMarker = time.Second

// Bucket is a key-value bucket. It is safe for concurrent use.
type Bucket struct {
	name string
	kv   jetstream.KeyValue
}

// Bucket returns the named bucket, creating it (or updating its options)
// on first use.
func (n *Node) Bucket(ctx context.Context, name string, opts BucketOptions) (*Bucket, error) {
	op := "open bucket " + name
	if !ValidBucketName(name) {
		return nil, fmt.Errorf("%s: invalid name: %w", op, aegis.ErrInvalidArgument)
	}
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	n.mu.Lock()
	b, ok := n.buckets[name]
	n.mu.Unlock()
	if ok {
		return b, nil
	}

	history := max(opts.History, 1)
	if history > 64 {
		return nil, fmt.Errorf("%s: history %d above 64: %w", op, opts.History, aegis.ErrInvalidArgument)
	}
	maxValue := opts.MaxValueSize
	if maxValue <= 0 {
		maxValue = -1
	}
	scfg := kvStreamConfig(name, jetstream.KeyValueConfig{
		Description:  opts.Description,
		History:      uint8(history),
		TTL:          opts.TTL,
		MaxValueSize: maxValue,
		Storage:      storage,
		Replicas:     n.replicas,
	}, opts.KeyTTLs)
	var kv jetstream.KeyValue
	err := retryStoreCreate(ctx, func(ctx context.Context) error {
		var s jetstream.Stream
		err := n.placed(ctx, scfg.Name, func(ctx context.Context, replicas int) (err error) {
			c := scfg
			c.Replicas = replicas
			s, err = n.js.CreateOrUpdateStream(ctx, c)
			return err
		})
		if err != nil {
			return err
		}
		if n.replicas > 1 {
			if err := waitLeader(ctx, s); err != nil {
				return err
			}
		}
		kv, err = n.js.KeyValue(ctx, name)
		return err
	})
	if err != nil {
		return nil, wrap(op, err)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	// Another goroutine may have won the race; keep one handle per name.
	if b, ok := n.buckets[name]; ok {
		return b, nil
	}
	b = &Bucket{name: name, kv: kv}
	n.buckets[name] = b
	return b, nil
}

// kvStreamConfig is the stream a bucket lives in, laid out as NATS's
// key-value convention wants it (ADR-8: stream KV_<bucket> on subjects
// $KV.<bucket>.>, one message per key revision, rollups, no deletes,
// writes refused rather than old revisions dropped when full).
//
// It is built here rather than by nats.go's CreateOrUpdateKeyValue
// because that always asks for direct gets. A replicated bucket must read
// from its leader (see leaderReads), and turning direct gets off after
// every create let members starting together undo each other: one
// member's create turned them back on just as another bound its handle,
// which then asked replicas that had stopped answering ("no responders")
// for as long as the process ran.
func kvStreamConfig(name string, cfg jetstream.KeyValueConfig, keyTTLs bool) jetstream.StreamConfig {
	// The server's default duplicate window is two minutes, and never
	// longer than the values live.
	dupes := 2 * time.Minute
	if cfg.TTL > 0 && cfg.TTL < dupes {
		dupes = cfg.TTL
	}
	scfg := jetstream.StreamConfig{
		Name:              "KV_" + name,
		Subjects:          []string{"$KV." + name + ".>"},
		Description:       cfg.Description,
		MaxMsgsPerSubject: int64(cfg.History),
		MaxBytes:          -1,
		MaxAge:            cfg.TTL,
		MaxMsgSize:        cfg.MaxValueSize,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           cfg.Storage,
		Replicas:          cfg.Replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dupes,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       cfg.Replicas <= 1,
	}
	if keyTTLs {
		scfg.AllowMsgTTL = true
		scfg.SubjectDeleteMarkerTTL = keyTTLMarker
	}
	return scfg
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

func (b *Bucket) op(verb, key string) string {
	return fmt.Sprintf("%s %s/%s", verb, b.name, key)
}

func (b *Bucket) checkKey(verb, key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%s: invalid key: %w", b.op(verb, key), aegis.ErrInvalidArgument)
	}
	return nil
}

// Get returns the current value of key and its revision, or aegis.ErrNotFound.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := b.checkKey("get", key); err != nil {
		return nil, 0, err
	}
	e, err := b.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, wrap(b.op("get", key), err)
	}
	return e.Value(), e.Revision(), nil
}

// Put writes key unconditionally and returns the new revision.
func (b *Bucket) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := b.checkKey("put", key); err != nil {
		return 0, err
	}
	rev, err := b.kv.Put(ctx, key, v)
	return rev, wrap(b.op("put", key), err)
}

// Create writes key only if it has no current value (it may have been
// deleted); otherwise it fails with aegis.ErrConflict.
func (b *Bucket) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := b.checkKey("create", key); err != nil {
		return 0, err
	}
	rev, err := b.kv.Create(ctx, key, v)
	return rev, wrap(b.op("create", key), err)
}

// CreateTTL is Create for a key that expires ttl after it is written,
// whatever the bucket's TTL. The bucket must have been opened with
// KeyTTLs.
func (b *Bucket) CreateTTL(ctx context.Context, key string, v []byte, ttl time.Duration) (uint64, error) {
	if err := b.checkKey("create", key); err != nil {
		return 0, err
	}
	rev, err := b.kv.Create(ctx, key, v, jetstream.KeyTTL(ttl))
	return rev, wrap(b.op("create", key), err)
}

// Update writes key only if its current revision is rev; otherwise it fails
// with aegis.ErrConflict. This is the compare-and-swap that read-modify-write
// callers loop on.
func (b *Bucket) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if err := b.checkKey("update", key); err != nil {
		return 0, err
	}
	nrev, err := b.kv.Update(ctx, key, v, rev)
	return nrev, wrap(b.op("update", key), err)
}

// Delete removes key. Deleting a missing key is not an error, so retries
// are harmless.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.checkKey("delete", key); err != nil {
		return err
	}
	return wrap(b.op("delete", key), b.kv.Delete(ctx, key))
}

// Keys returns the keys starting with prefix ("" for all), sorted. An empty
// result is an empty slice, not an error.
func (b *Bucket) Keys(ctx context.Context, prefix string) ([]string, error) {
	op := fmt.Sprintf("list keys %s/%s*", b.name, prefix)
	ctx, cancel := withTimeout(ctx)
	defer cancel()

	lister, err := b.kv.ListKeysFiltered(ctx, keyFilter(prefix))
	if err != nil {
		return nil, wrap(op, err)
	}
	keys := []string{}
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	// The lister closes its channel both when done and when ctx ends.
	if err := ctx.Err(); err != nil {
		return nil, wrap(op, err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// keyFilter narrows a listing to the subject tokens a prefix fixes, so the
// server sends only candidate keys: prefix "app.users.al" lists "app.users.>"
// and the rest is matched here.
func keyFilter(prefix string) string {
	i := strings.LastIndexByte(prefix, '.')
	if i <= 0 || !ValidKey(prefix[:i]) {
		return ">"
	}
	return prefix[:i] + ".>"
}
