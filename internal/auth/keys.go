package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// Store keeps key records. In production it is a JetStream KV bucket; the
// interface is ours so that the tests, and a second backend, stay simple.
type Store interface {
	// Get returns aegis.ErrNotFound when the key is missing.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Create returns aegis.ErrConflict when the key exists.
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
	// Keys lists the keys that start with prefix.
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Store layout. Names and ids are validated before they are used in a key,
// so neither can add a token to the KV subject.
const (
	recordPrefix = "key."  // key.<id>     → JSON record
	namePrefix   = "name." // name.<name>  → id of the newest generation
)

// CacheTTL is how long a verified record is trusted without going back to the
// store. It bounds how late a revocation made on another node is honoured;
// a revocation made through this Keys takes effect at once.
const CacheTTL = 5 * time.Second

// Identity is who a verified API key belongs to.
type Identity struct {
	KeyName string
	// KeyID is the key's non-secret id (KeyInfo.ID): what the guard
	// counts and suspends a key by.
	KeyID string
	// Scopes are the apps and functions the key may call; empty means
	// all. Shared with the cache: read it, never modify it.
	Scopes []string
	// Rate and Burst limit the key's requests (zero: no limit); Budget
	// caps its invocations per window (zero: no cap).
	Rate   manifest.Rate
	Burst  int
	Budget manifest.Quota
}

// KeyInfo describes an API key without its secret.
type KeyInfo struct {
	Name string
	// ID is the non-secret lookup id, the part after "aegis_": it maps a
	// leaked key found by a scanner back to its name.
	ID        string
	CreatedAt time.Time
	RevokedAt *time.Time
	Revoked   bool
	Scopes    []string
	Labels    map[string]string
	// ExpiresAt is when the key stops verifying; nil for never.
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	// Previous is the generation a rotation replaced, while it still
	// verifies (its overlap has not run out); nil otherwise.
	Previous *KeyGeneration
	// Rate, Burst and Budget are the key's limits, as created.
	Rate   manifest.Rate
	Burst  int
	Budget manifest.Quota
}

// KeyGeneration is one secret of a rotated key.
type KeyGeneration struct {
	ID         string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}

// record is what the store holds for one key.
type record struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// Hash is "sha256:" and the hex SHA-256 of the 32 secret bytes. A fast
	// hash is right here: slow hashes (bcrypt, argon2) protect guessable
	// passwords, but a 256-bit random secret cannot be brute-forced from its
	// hash at any speed, and a slow hash would cost every request dearly.
	// The prefix leaves room for another scheme later.
	Hash      string     `json:"hash"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`

	Scopes    []string          `json:"scopes,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	// Previous is the id of the generation this one replaced by rotation.
	Previous string `json:"previous,omitempty"`
	// Rate ("10/s"), Burst and Budget ("1000/day") are the key's limits,
	// written as ParseRate and ParseQuota read them; absent for none.
	Rate   string `json:"rate,omitempty"`
	Burst  int    `json:"burst,omitempty"`
	Budget string `json:"budget,omitempty"`
}

// limits decodes the record's rate and budget. A record whose limits do
// not parse is damaged: ErrUnavailable, so callers fail closed rather
// than serve a key without its limits.
func (r *record) limits() (rate manifest.Rate, budget manifest.Quota, err error) {
	if r.Rate != "" {
		if rate, err = manifest.ParseRate(r.Rate); err != nil {
			return rate, budget, fmt.Errorf("read key record: %w: %w", aegis.ErrUnavailable, err)
		}
	}
	if r.Budget != "" {
		if budget, err = manifest.ParseQuota(r.Budget); err != nil {
			return rate, budget, fmt.Errorf("read key record: %w: %w", aegis.ErrUnavailable, err)
		}
	}
	return rate, budget, nil
}

// setLimits writes opts' limits into r.
func (r *record) setLimits(opts KeyOptions) {
	r.Rate, r.Burst, r.Budget = opts.Rate.String(), opts.Burst, opts.Budget.String()
}

const hashScheme = "sha256:"

// cached is a decoded record and when it was read. Never modified once built.
type cached struct {
	// ident is what Verify returns, built once per read of the record
	// rather than on every request.
	ident   *Identity
	hash    [sha256.Size]byte
	revoked bool
	expires time.Time // zero: never
	fetched time.Time
}

// dummyHash is compared against when the id is unknown or the key malformed,
// so that every verification does the same hash-and-compare work.
var dummyHash = sha256.Sum256(make([]byte, secretBytes))

// Keys creates, verifies, lists and revokes API keys.
type Keys struct {
	store Store
	now   func() time.Time
	ttl   time.Duration

	// cache maps id → *cached. It only ever holds records found in the
	// store, so its size is bounded by the number of keys ever created;
	// unknown ids are not cached, or a stream of random ids would grow it.
	cache sync.Map
	// gen counts invalidations. A verification that read the store before
	// an invalidation must not put its (now stale) record back into the
	// cache after it; mu makes the check and the store one step.
	mu  sync.Mutex
	gen atomic.Uint64

	// rotating serializes Rotate on this node: the store has no
	// compare-and-swap, so two rotations racing here could both hand out a
	// secret while the name index keeps only one of them.
	rotating sync.Mutex

	// usage maps id → *usage for the last-used times (lastused.go); bg
	// tracks their background writes, which Close awaits.
	usage  sync.Map
	bgMu   sync.Mutex
	bg     sync.WaitGroup
	closed bool
}

// NewKeys returns Keys backed by store.
func NewKeys(store Store) *Keys {
	return &Keys{store: store, now: time.Now, ttl: CacheTTL}
}

// Create makes a new API key called name and returns its plaintext, which is
// shown to the user once and never stored. Names are unique for the life of
// the store, revoked keys included, so a name in the audit log always means
// one key.
func (k *Keys) Create(ctx context.Context, name string) (string, error) {
	return k.CreateWithOptions(ctx, name, KeyOptions{})
}

// CreateWithOptions is Create for a key with scopes, an expiry or labels.
func (k *Keys) CreateWithOptions(ctx context.Context, name string, opts KeyOptions) (string, error) {
	if err := validateName(name); err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	if err := opts.validate(); err != nil {
		return "", fmt.Errorf("create api key %q: %w", name, err)
	}
	// Cheap early answer for the common duplicate; the Create on the name
	// index below is what actually settles a race.
	if _, _, err := k.store.Get(ctx, namePrefix+name); err == nil {
		return "", fmt.Errorf("create api key %q: name taken: %w", name, aegis.ErrConflict)
	} else if !errors.Is(err, aegis.ErrNotFound) {
		return "", fmt.Errorf("create api key %q: %w", name, err)
	}

	rec := record{Name: name, CreatedAt: k.now().UTC(), Scopes: opts.Scopes, Labels: opts.Labels}
	rec.setLimits(opts)
	if opts.ExpiresIn > 0 {
		exp := rec.CreatedAt.Add(opts.ExpiresIn)
		rec.ExpiresAt = &exp
	}
	secret, err := newSecret(&rec)
	if err != nil {
		return "", fmt.Errorf("create api key %q: %w", name, err)
	}

	// The record goes first and the name index second, so the index never
	// points at a missing record.
	if err := k.createRecord(ctx, &rec); err != nil {
		return "", fmt.Errorf("create api key %q: %w", name, err)
	}
	if _, err := k.store.Create(ctx, namePrefix+name, []byte(rec.ID)); err != nil {
		// Lost a race for the name (or the store failed). The record's
		// plaintext was never handed out, but revoke it anyway so an
		// orphan can never verify.
		revoked := rec.CreatedAt
		rec.RevokedAt = &revoked
		if b, merr := json.Marshal(rec); merr == nil {
			_, _ = k.store.Put(ctx, recordPrefix+rec.ID, b)
		}
		if errors.Is(err, aegis.ErrConflict) {
			return "", fmt.Errorf("create api key %q: name taken: %w", name, err)
		}
		return "", fmt.Errorf("create api key %q: index name: %w", name, err)
	}
	return keyPrefix + rec.ID + "_" + b32Encode(secret[:]), nil
}

// newSecret draws a secret and sets rec's hash of it.
func newSecret(rec *record) ([secretBytes]byte, error) {
	var secret [secretBytes]byte
	if err := randomBytes(secret[:]); err != nil {
		return secret, err
	}
	sum := sha256.Sum256(secret[:])
	rec.Hash = hashScheme + hex.EncodeToString(sum[:])
	return secret, nil
}

// createRecord stores rec under a fresh random id, which it sets.
func (k *Keys) createRecord(ctx context.Context, rec *record) error {
	return createUnderFreshID(ctx, k.store, recordPrefix, rec, func(id string) { rec.ID = id })
}

// createUnderFreshID stores rec, encoded as JSON, under prefix and a fresh
// random id that setID writes into it first (API keys and admin tokens keep
// their id in the record). A clash of 80-bit ids will not happen in
// practice, but if it does the store says so and a new id is drawn rather
// than overwriting another record.
func createUnderFreshID(ctx context.Context, store Store, prefix string, rec any, setID func(id string)) error {
	for range 3 {
		var raw [idBytes]byte
		if err := randomBytes(raw[:]); err != nil {
			return err
		}
		id := b32Encode(raw[:])
		setID(id)
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode record: %w", err)
		}
		_, err = store.Create(ctx, prefix+id, b)
		if err == nil {
			return nil
		}
		if !errors.Is(err, aegis.ErrConflict) {
			return fmt.Errorf("store record: %w", err)
		}
	}
	return fmt.Errorf("store record: no free id after 3 tries: %w", aegis.ErrConflict)
}

// Verify checks a presented API key (the token from ParseBearer) and returns
// whose it is. Every failure is ErrUnauthenticated, whatever its cause; use
// Reason on the error for the log. An error that is not ErrUnauthenticated
// means the store could not be read: the caller must fail closed (503).
//
// A record read from the store is trusted for CacheTTL, so a hot key costs
// one SHA-256 and a map lookup; see CacheTTL for what that means for
// revocation. The Identity is shared with the cache: read it, never modify
// it.
func (k *Keys) Verify(ctx context.Context, bearer string) (*Identity, error) {
	id, secret, ok := parseKey(bearer)
	if !ok {
		sum := sha256.Sum256(secret[:]) // zeroes: same work as a real check
		subtle.ConstantTimeCompare(sum[:], dummyHash[:])
		return nil, errMalformed
	}
	sum := sha256.Sum256(secret[:])
	// One clock read serves the cache, the expiry and the last use (on
	// some virtual machines a read costs nearly 100 ns), unless the record
	// had to be read from the store, which takes time of its own.
	now := k.now()
	c, read, err := k.lookup(ctx, id, now)
	if read {
		now = k.now()
	}
	if errors.Is(err, aegis.ErrNotFound) {
		subtle.ConstantTimeCompare(sum[:], dummyHash[:])
		return nil, errUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("verify api key: %w", err)
	}
	if subtle.ConstantTimeCompare(sum[:], c.hash[:]) != 1 {
		return nil, errWrongSecret
	}
	// Checked after the secret, so only the key's holder learns that it
	// was revoked.
	if c.revoked {
		return nil, errRevoked
	}
	if !c.expires.IsZero() && !now.Before(c.expires) {
		return nil, errExpired
	}
	k.noteUse(id, now)
	return c.ident, nil
}

// lookup returns the record for id, from the cache while it is fresh at
// now; read reports that it went to the store.
func (k *Keys) lookup(ctx context.Context, id string, now time.Time) (c *cached, read bool, err error) {
	if v, ok := k.cache.Load(id); ok {
		hit := v.(*cached)
		if age := now.Sub(hit.fetched); age >= 0 && age < k.ttl {
			return hit, false, nil
		}
	}
	gen := k.gen.Load()
	rec, err := k.get(ctx, id)
	if err != nil {
		return nil, true, err
	}
	rate, budget, err := rec.limits()
	if err != nil {
		return nil, true, err
	}
	c = &cached{ident: &Identity{KeyName: rec.Name, KeyID: id, Scopes: rec.Scopes, Rate: rate, Burst: rec.Burst, Budget: budget},
		revoked: rec.RevokedAt != nil, fetched: now}
	if rec.ExpiresAt != nil {
		c.expires = *rec.ExpiresAt
	}
	if c.hash, err = decodeHash(rec.Hash); err != nil {
		return nil, true, fmt.Errorf("read key record: %w", err)
	}
	k.mu.Lock()
	if k.gen.Load() == gen {
		k.cache.Store(id, c)
	}
	k.mu.Unlock()
	return c, true, nil
}

// get reads and decodes the record for id. A record that cannot be read or
// decoded is ErrUnavailable (fail closed), not "unknown key".
func (k *Keys) get(ctx context.Context, id string) (*record, error) {
	return getRecord[record](ctx, k.store, recordPrefix+id, "key record")
}

// getRecord reads and decodes the JSON record at key (API keys and admin
// tokens alike). A missing one is aegis.ErrNotFound; one that cannot be
// read or decoded is ErrUnavailable, so callers fail closed.
func getRecord[R any](ctx context.Context, store Store, key, what string) (*R, error) {
	b, _, err := store.Get(ctx, key)
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", what, aegis.ErrUnavailable, err)
	}
	var rec R
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", what, aegis.ErrUnavailable, err)
	}
	return &rec, nil
}

// decodeHash reads a stored "sha256:<hex>" hash; anything else is
// ErrUnavailable (a damaged record verifies nothing).
func decodeHash(h string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	if !strings.HasPrefix(h, hashScheme) || hex.DecodedLen(len(h)-len(hashScheme)) != sha256.Size {
		return out, fmt.Errorf("unknown hash scheme: %w", aegis.ErrUnavailable)
	}
	if _, err := hex.Decode(out[:], []byte(h[len(hashScheme):])); err != nil {
		return out, fmt.Errorf("bad hash: %w", aegis.ErrUnavailable)
	}
	return out, nil
}

// forget drops id from the cache and stops in-flight reads from putting it back.
func (k *Keys) forget(id string) {
	k.mu.Lock()
	k.gen.Add(1)
	k.cache.Delete(id)
	k.mu.Unlock()
}

// idForName resolves the name index.
func (k *Keys) idForName(ctx context.Context, name string) (string, error) {
	return lookupID(ctx, k.store, namePrefix+name)
}

// lookupID reads a name index entry (API keys and admin tokens both keep
// one: name → id), refusing an id that is not of our making.
func lookupID(ctx context.Context, store Store, key string) (string, error) {
	b, _, err := store.Get(ctx, key)
	if err != nil {
		return "", err
	}
	id := string(b)
	if !validID(id) {
		return "", fmt.Errorf("name index points at a malformed id: %w", aegis.ErrUnavailable)
	}
	return id, nil
}

// List returns every key, revoked ones included, sorted by name.
func (k *Keys) List(ctx context.Context) ([]KeyInfo, error) {
	names, err := k.store.Keys(ctx, namePrefix)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(names))
	for _, key := range names {
		// Accept the keys with or without the prefix: either is a
		// reasonable reading of "list the keys under prefix".
		name := strings.TrimPrefix(key, namePrefix)
		id, err := k.idForName(ctx, name)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // deleted between Keys and Get
		}
		if err != nil {
			return nil, fmt.Errorf("list api keys: %q: %w", name, err)
		}
		info, err := k.info(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %q: %w", name, err)
		}
		out = append(out, *info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Info describes the key called name (its newest generation), revoked or
// not; an unknown name is aegis.ErrNotFound.
func (k *Keys) Info(ctx context.Context, name string) (*KeyInfo, error) {
	if err := validateName(name); err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	id, err := k.idForName(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("look up api key %q: %w", name, err)
	}
	info, err := k.info(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("look up api key %q: %w", name, err)
	}
	return info, nil
}

// info describes the key whose newest generation is id.
func (k *Keys) info(ctx context.Context, id string) (*KeyInfo, error) {
	rec, err := k.get(ctx, id)
	if err != nil {
		return nil, err
	}
	used, err := k.lastUsed(ctx, id)
	if err != nil {
		return nil, err
	}
	rate, budget, err := rec.limits()
	if err != nil {
		return nil, err
	}
	info := &KeyInfo{
		Name: rec.Name, ID: rec.ID, CreatedAt: rec.CreatedAt,
		RevokedAt: rec.RevokedAt, Revoked: rec.RevokedAt != nil,
		Scopes: rec.Scopes, Labels: rec.Labels, ExpiresAt: rec.ExpiresAt, LastUsedAt: used,
		Rate: rate, Burst: rec.Burst, Budget: budget,
	}
	if rec.Previous == "" || rec.RevokedAt != nil {
		return info, nil
	}
	prev, err := k.get(ctx, rec.Previous)
	if errors.Is(err, aegis.ErrNotFound) {
		return info, nil
	}
	if err != nil {
		return nil, err
	}
	if prev.RevokedAt != nil || prev.ExpiresAt != nil && !k.now().Before(*prev.ExpiresAt) {
		return info, nil // no longer verifies: nothing to show
	}
	prevUsed, err := k.lastUsed(ctx, prev.ID)
	if err != nil {
		return nil, err
	}
	info.Previous = &KeyGeneration{ID: prev.ID, CreatedAt: prev.CreatedAt, ExpiresAt: prev.ExpiresAt, LastUsedAt: prevUsed}
	return info, nil
}

// Rotate gives the key called name a new secret, under a new id, and
// returns its plaintext. The old secret keeps verifying until now+overlap
// (sooner if it was due to expire sooner), so callers can switch without a
// gap; after that it is refused as expired. The new secret has the key's
// scopes and labels and, if the key expires, the same lifetime from now.
// A generation older than the one replaced stops verifying at once: at
// most two secrets of a key are ever valid. An unknown name is
// aegis.ErrNotFound; a revoked key is aegis.ErrConflict.
func (k *Keys) Rotate(ctx context.Context, name string, overlap time.Duration) (string, error) {
	if err := validateName(name); err != nil {
		return "", fmt.Errorf("rotate api key: %w", err)
	}
	if overlap < 0 {
		return "", fmt.Errorf("rotate api key %q: overlap must not be negative: %w", name, aegis.ErrInvalidArgument)
	}
	k.rotating.Lock()
	defer k.rotating.Unlock()
	oldID, err := k.idForName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("rotate api key %q: %w", name, err)
	}
	old, err := k.get(ctx, oldID)
	if err != nil {
		return "", fmt.Errorf("rotate api key %q: %w", name, err)
	}
	if old.RevokedAt != nil {
		return "", fmt.Errorf("rotate api key %q: key is revoked: %w", name, aegis.ErrConflict)
	}
	now := k.now().UTC()
	rec := record{Name: name, CreatedAt: now, Scopes: old.Scopes, Labels: old.Labels, Previous: oldID,
		Rate: old.Rate, Burst: old.Burst, Budget: old.Budget}
	if old.ExpiresAt != nil {
		exp := now.Add(old.ExpiresAt.Sub(old.CreatedAt))
		rec.ExpiresAt = &exp
	}
	secret, err := newSecret(&rec)
	if err != nil {
		return "", fmt.Errorf("rotate api key %q: %w", name, err)
	}
	if err := k.createRecord(ctx, &rec); err != nil {
		return "", fmt.Errorf("rotate api key %q: %w", name, err)
	}
	// Until the index points at the new record nobody holds its secret, so
	// a failure here leaves the old key as it was.
	if _, err := k.store.Put(ctx, namePrefix+name, []byte(rec.ID)); err != nil {
		return "", fmt.Errorf("rotate api key %q: index name: %w", name, err)
	}
	if err := k.expireBy(ctx, oldID, now.Add(overlap)); err != nil {
		return "", fmt.Errorf("rotate api key %q: end overlap: %w", name, err)
	}
	if old.Previous != "" {
		if err := k.expireBy(ctx, old.Previous, now); err != nil && !errors.Is(err, aegis.ErrNotFound) {
			return "", fmt.Errorf("rotate api key %q: expire older generation: %w", name, err)
		}
	}
	return keyPrefix + rec.ID + "_" + b32Encode(secret[:]), nil
}

// expireBy makes record id expire at t unless it expires (or was revoked)
// earlier, and drops it from this node's cache.
func (k *Keys) expireBy(ctx context.Context, id string, t time.Time) error {
	defer k.forget(id)
	rec, err := k.get(ctx, id)
	if err != nil {
		return err
	}
	if rec.RevokedAt != nil || rec.ExpiresAt != nil && !rec.ExpiresAt.After(t) {
		return nil
	}
	rec.ExpiresAt = &t
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	_, err = k.store.Put(ctx, recordPrefix+id, b)
	return err
}

// Revoke stops the key called name from verifying: at once on this node, and
// within CacheTTL on others. A generation still inside its rotation overlap
// is revoked with it. Revoking a revoked key is not an error and keeps the
// first revocation time. An unknown name is aegis.ErrNotFound.
func (k *Keys) Revoke(ctx context.Context, name string) error {
	if err := validateName(name); err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	k.rotating.Lock()
	defer k.rotating.Unlock()
	id, err := k.idForName(ctx, name)
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", name, err)
	}
	prev, err := k.revokeRecord(ctx, id)
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", name, err)
	}
	if prev != "" {
		if _, err := k.revokeRecord(ctx, prev); err != nil && !errors.Is(err, aegis.ErrNotFound) {
			return fmt.Errorf("revoke api key %q: previous generation: %w", name, err)
		}
	}
	return nil
}

// revokeRecord marks record id revoked, unless it already is, and returns
// the id of the generation it replaced, if any.
func (k *Keys) revokeRecord(ctx context.Context, id string) (previous string, err error) {
	// Dropped from the cache once the write is done (or found unneeded), so
	// this node stops trusting the key the moment Revoke returns. A Verify
	// that read the old record before the write cannot put it back: forget
	// bumps the generation it checks.
	defer k.forget(id)
	rec, err := k.get(ctx, id)
	if err != nil {
		return "", err
	}
	if rec.RevokedAt != nil {
		return rec.Previous, nil
	}
	now := k.now().UTC()
	rec.RevokedAt = &now
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode record: %w", err)
	}
	if _, err := k.store.Put(ctx, recordPrefix+id, b); err != nil {
		return "", err
	}
	return rec.Previous, nil
}

// validateName accepts 1–64 of [A-Za-z0-9_.-]. A name is also a token of the
// KV subject (name.<name>), so it may not start or end with '.' or contain
// "..": NATS subjects have no empty tokens.
func validateName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("key name must be 1 to 64 characters: %w", aegis.ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("key name %q: only letters, digits, '_', '.' and '-' are allowed: %w", name, aegis.ErrInvalidArgument)
		}
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("key name %q: may not start or end with '.' or contain \"..\": %w", name, aegis.ErrInvalidArgument)
	}
	return nil
}
