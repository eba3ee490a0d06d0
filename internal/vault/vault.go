// Package vault owns the platform's secrets: named values per app, kept in
// a key-value store only as envelopes. Each version of a secret is sealed
// under its own data key (a Tink AEAD keyset, AES256-GCM) with the app, the
// name and the version as associated data; the data key is wrapped by the
// key-encryption key (KEK), a KMS: the local master key (LoadMasterKey) or
// HashiCorp Vault Transit. docs/vault.md describes the model.
//
// The package never logs, formats into an error or returns in an Info a
// secret value, and never stores one in the clear: a KEK that does not open
// the store's check record stops Open with ErrWrongMasterKey rather than
// let anything be written or read.
package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/manifest"
)

// Store is the key-value store the vault keeps its records in, with
// revisions for compare-and-set; the server adapts the JetStream bucket
// Bucket to it (testkit/memkv in unit tests). Get returns aegis.ErrNotFound
// for a missing key; Create and Update return aegis.ErrConflict when the
// key exists or its revision is not rev.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
}

const (
	// Bucket is the KV bucket the server opens for the vault. It must keep
	// one revision per key (history 1): an overwritten record holds the
	// versions a rotation has destroyed.
	Bucket = "aegis_secrets"
	// MaxValueSize caps a secret value.
	MaxValueSize = 64 << 10
	// MaxVersions caps the versions one secret keeps at once (the current
	// one and those still in their overlap).
	MaxVersions = 8
	// MaxOverlap caps how long a rotated-out version stays readable.
	MaxOverlap = 30 * 24 * time.Hour
)

// ErrWrongMasterKey: the KEK given to Open does not open the store's check
// record, so it is not the key the vault was created with.
var ErrWrongMasterKey = errors.New("the master key does not open this data directory's vault: start with the key it was created with (--master-key-file or AEGIS_MASTER_KEY)")

// ErrCorrupt: a stored record or ciphertext does not decode or does not
// authenticate (damaged, moved to another secret or version, or sealed
// under another key). Never a value, and never a fallback.
var ErrCorrupt = errors.New("vault data does not authenticate (damaged, moved or sealed under another key)")

// errOpen is what every failure to unwrap or open an envelope becomes.
var errOpen = ErrCorrupt

// Info describes a secret without its value.
type Info struct {
	App  string `json:"app"`
	Name string `json:"name"`
	// Version is the current version, the one Read returns.
	Version int `json:"version"`
	// Versions are every version still readable, oldest first.
	Versions []VersionInfo `json:"versions"`
}

// VersionInfo describes one version of a secret.
type VersionInfo struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when a rotated-out version stops being readable; zero
	// for the current version.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Config wires a Vault.
type Config struct {
	Store Store
	// KMS is the key-encryption key (LoadMasterKey, NewTransit).
	KMS    KMS
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Vault is safe for concurrent use, and by several servers on one store:
// every change is a compare-and-set of one record, retried on conflict.
type Vault struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	mu sync.RWMutex
	// kek wraps the data keys this vault writes. During RotateMaster,
	// other is the second KEK tried on reads and used to add NextKey on
	// writes (the new KEK before the switch, the old one after).
	kek   KMS
	other KMS
	// kekGen counts changes of kek and other, so a read that loaded a
	// record before a rotation step and opened it after can tell it raced
	// the rotation and load the record again.
	kekGen uint64
	// rotateMu lets one RotateMaster run at a time in this process.
	rotateMu sync.Mutex
	// dataKeys caches each app's unwrapped data key (tink.AEAD) by app
	// name: it never changes once created (datakeys.go).
	dataKeys sync.Map
}

// Open checks the KEK against the store's check record (creating it on an
// empty store) and returns the vault.
func Open(ctx context.Context, cfg Config) (*Vault, error) {
	if cfg.Store == nil || cfg.KMS == nil {
		return nil, fmt.Errorf("open vault: store and KMS are required: %w", aegis.ErrInvalidArgument)
	}
	v := &Vault{store: cfg.Store, kek: cfg.KMS, log: cfg.Logger, now: cfg.Now}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := v.openCheck(ctx); err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	return v, nil
}

// CheckName reports whether name is a valid secret name: 1-64 letters,
// digits, '_', '-' and '.', neither starting nor ending with '.' and
// without two dots in a row (the name is a token of a storage key).
func CheckName(name string) error {
	// One rule with the manifest's grants, so a grant can always name a
	// secret the vault holds.
	if err := manifest.CheckVaultSecretName(name); err != nil {
		return fmt.Errorf("invalid secret name %q: %s: %w", name, err.Error(), aegis.ErrInvalidArgument)
	}
	return nil
}

// CheckApp reports whether app is a valid app name.
func CheckApp(app string) error {
	if err := manifest.CheckAppName(app); err != nil {
		return fmt.Errorf("invalid app name %q: %s: %w", app, err.Error(), aegis.ErrInvalidArgument)
	}
	return nil
}

func checkArgs(app, name string) error {
	if err := CheckApp(app); err != nil {
		return err
	}
	return CheckName(name)
}

const secretPrefix = "s."

func secretKey(app, name string) string { return secretPrefix + app + "." + name }

// keks returns the KEK writes use and the second one tried on reads (nil
// outside a rotation).
func (v *Vault) keks() (KMS, KMS) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.kek, v.other
}

// Set stores value as a new version of the secret (version 1 for a new
// one) and destroys every earlier version at once; Rotate keeps the
// previous one readable for an overlap.
func (v *Vault) Set(ctx context.Context, app, name string, value []byte) (Info, error) {
	info, err := v.write(ctx, app, name, value, 0)
	if err != nil {
		return Info{}, fmt.Errorf("set secret %s/%s: %w", app, name, err)
	}
	return info, nil
}

// Rotate stores value as a new version of an existing secret; the previous
// version stays readable (ReadVersion) until now+overlap and is destroyed
// on the first access or sweep after that.
func (v *Vault) Rotate(ctx context.Context, app, name string, value []byte, overlap time.Duration) (Info, error) {
	info, err := v.rotate(ctx, app, name, value, overlap)
	if err != nil {
		return Info{}, fmt.Errorf("rotate secret %s/%s: %w", app, name, err)
	}
	return info, nil
}

func (v *Vault) rotate(ctx context.Context, app, name string, value []byte, overlap time.Duration) (Info, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return Info{}, fmt.Errorf("overlap %s outside 0..%s: %w", overlap, MaxOverlap, aegis.ErrInvalidArgument)
	}
	if err := checkArgs(app, name); err != nil {
		return Info{}, err
	}
	if ok, err := v.Exists(ctx, app, name); err != nil {
		return Info{}, err
	} else if !ok {
		return Info{}, fmt.Errorf("no such secret: %w", aegis.ErrNotFound)
	}
	return v.write(ctx, app, name, value, overlap)
}

// write adds a version; the previous current one expires after overlap
// (at once when zero), earlier ones keep their own expiry.
func (v *Vault) write(ctx context.Context, app, name string, value []byte, overlap time.Duration) (Info, error) {
	if err := checkArgs(app, name); err != nil {
		return Info{}, err
	}
	if len(value) > MaxValueSize {
		return Info{}, fmt.Errorf("value of %d bytes above %d: %w", len(value), MaxValueSize, aegis.ErrLimitExceeded)
	}
	if err := v.guardWrite(ctx); err != nil {
		return Info{}, err
	}
	var info Info
	err := v.mutate(ctx, secretKey(app, name), func(r *record) (*record, error) {
		now := v.now().UTC()
		if r == nil {
			r = &record{Format: recordFormat, App: app, Name: name}
		} else {
			prev := &r.Versions[len(r.Versions)-1]
			exp := now.Add(overlap)
			prev.ExpiresAt = &exp
			r.prune(now)
		}
		if len(r.Versions) >= MaxVersions {
			return nil, fmt.Errorf("%d versions still in their overlap: %w", len(r.Versions), aegis.ErrLimitExceeded)
		}
		n := r.Current + 1
		vr, err := v.sealVersion(ctx, app, name, n, value, now)
		if err != nil {
			return nil, err
		}
		r.Versions = append(r.Versions, vr)
		r.Current = n
		info = r.info()
		return r, nil
	})
	if err != nil {
		return Info{}, err
	}
	return info, nil
}

func (v *Vault) sealVersion(ctx context.Context, app, name string, n int, value []byte, now time.Time) (versionRecord, error) {
	kek, other := v.keks()
	s, err := seal(ctx, kek, app, name, n, value)
	if err != nil {
		return versionRecord{}, err
	}
	vr := versionRecord{Version: n, CreatedAt: now, WrappedKey: s.wrappedKey, Ciphertext: s.ciphertext}
	if other != nil { // a rotation runs: wrap the key for both KEKs
		if vr.NextKey, err = rewrap(ctx, kek, other, s.wrappedKey, app, name, n); err != nil {
			return versionRecord{}, err
		}
	}
	return vr, nil
}

// Read returns the current value of the secret; aegis.ErrNotFound when
// there is none.
func (v *Vault) Read(ctx context.Context, app, name string) ([]byte, error) {
	b, err := v.read(ctx, app, name, 0)
	if err != nil {
		return nil, fmt.Errorf("read secret %s/%s: %w", app, name, err)
	}
	return b, nil
}

// ReadVersion returns one version of the secret while it is readable (the
// current one, or a rotated-out one within its overlap).
func (v *Vault) ReadVersion(ctx context.Context, app, name string, version int) ([]byte, error) {
	if version < 1 {
		return nil, fmt.Errorf("read secret %s/%s version %d: %w", app, name, version, aegis.ErrInvalidArgument)
	}
	b, err := v.read(ctx, app, name, version)
	if err != nil {
		return nil, fmt.Errorf("read secret %s/%s version %d: %w", app, name, version, err)
	}
	return b, nil
}

func (v *Vault) read(ctx context.Context, app, name string, version int) ([]byte, error) {
	if err := checkArgs(app, name); err != nil {
		return nil, err
	}
	for {
		gen := v.kekGeneration()
		r, err := v.load(ctx, secretKey(app, name))
		if err != nil {
			return nil, err
		}
		n := version
		if n == 0 {
			n = r.Current
		}
		vr := r.version(n)
		if vr == nil {
			return nil, fmt.Errorf("no such version: %w", aegis.ErrNotFound)
		}
		b, err := v.openVersion(ctx, r, vr)
		if err != nil && v.kekGeneration() != gen {
			continue // a rotation step ran between load and open: reload
		}
		return b, err
	}
}

func (v *Vault) kekGeneration() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.kekGen
}

// openVersion opens one version with whichever KEK and wrapped key fit:
// outside a rotation that is the vault's KEK and WrappedKey; during one the
// record may already hold the key wrapped for the other KEK.
func (v *Vault) openVersion(ctx context.Context, r *record, vr *versionRecord) ([]byte, error) {
	h, err := v.unwrapAny(ctx, vr, r.App, r.Name)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("open data key: %w", err)
	}
	b, err := a.Decrypt(vr.Ciphertext, valueAD(r.App, r.Name, vr.Version))
	if err != nil {
		return nil, fmt.Errorf("decrypt value: %w", errOpen)
	}
	return b, nil
}

// load reads, decodes and checks a secret's record, without the versions
// whose overlap has ended (which it destroys in the store, best effort).
func (v *Vault) load(ctx context.Context, key string) (*record, error) {
	b, rev, err := v.store.Get(ctx, key)
	if err != nil {
		if errors.Is(err, aegis.ErrNotFound) {
			return nil, fmt.Errorf("no such secret: %w", aegis.ErrNotFound)
		}
		return nil, err
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, err
	}
	if key != secretKey(r.App, r.Name) {
		return nil, fmt.Errorf("%w: record under another secret's key", ErrCorrupt)
	}
	if r.prune(v.now()) {
		if enc, err := r.encode(); err == nil {
			// A conflict means another writer got there first; its record
			// is pruned on its next access.
			if _, err := v.store.Update(ctx, key, enc, rev); err == nil {
				v.log.InfoContext(ctx, "secret versions destroyed after their overlap",
					logkey.App, r.App, logkey.SecretName, r.Name)
			}
		}
	}
	return r, nil
}

// List describes every secret of app, sorted by name, never a value.
func (v *Vault) List(ctx context.Context, app string) ([]Info, error) {
	if err := CheckApp(app); err != nil {
		return nil, fmt.Errorf("list secrets of %s: %w", app, err)
	}
	keys, err := v.store.Keys(ctx, secretPrefix+app+".")
	if err != nil {
		return nil, fmt.Errorf("list secrets of %s: %w", app, err)
	}
	out := []Info{}
	for _, k := range keys {
		r, err := v.load(ctx, k)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("list secrets of %s: %s: %w", app, strings.TrimPrefix(k, secretPrefix), err)
		}
		out = append(out, r.info())
	}
	return out, nil
}

// Exists reports whether app has a secret named name.
func (v *Vault) Exists(ctx context.Context, app, name string) (bool, error) {
	if err := checkArgs(app, name); err != nil {
		return false, err
	}
	_, _, err := v.store.Get(ctx, secretKey(app, name))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, aegis.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("look up secret %s/%s: %w", app, name, err)
	}
}

// Remove destroys every version of the secret.
func (v *Vault) Remove(ctx context.Context, app, name string) error {
	if err := checkArgs(app, name); err != nil {
		return fmt.Errorf("remove secret: %w", err)
	}
	ok, err := v.Exists(ctx, app, name)
	if err != nil {
		return fmt.Errorf("remove secret %s/%s: %w", app, name, err)
	}
	if !ok {
		return fmt.Errorf("remove secret %s/%s: %w", app, name, aegis.ErrNotFound)
	}
	if err := v.store.Delete(ctx, secretKey(app, name)); err != nil {
		return fmt.Errorf("remove secret %s/%s: %w", app, name, err)
	}
	return nil
}

// Sweep destroys every version whose overlap has ended, in every app; the
// server calls it now and then so a version nobody reads does not outlive
// its overlap. It returns how many records it rewrote.
func (v *Vault) Sweep(ctx context.Context) (int, error) {
	keys, err := v.store.Keys(ctx, secretPrefix)
	if err != nil {
		return 0, fmt.Errorf("sweep secrets: %w", err)
	}
	n := 0
	for _, k := range keys {
		err := v.mutate(ctx, k, func(r *record) (*record, error) {
			if r == nil || !r.prune(v.now()) {
				return nil, errUnchanged
			}
			n++
			return r, nil
		})
		if err != nil && !errors.Is(err, errUnchanged) {
			return n, fmt.Errorf("sweep secrets: %w", err)
		}
	}
	return n, nil
}

// errUnchanged ends a mutate without writing.
var errUnchanged = errors.New("unchanged")

// maxAttempts bounds the compare-and-set retries of one change.
const maxAttempts = 32

// mutate applies fn to the record under key (nil when there is none) and
// writes the result with compare-and-set, again on a conflict.
func (v *Vault) mutate(ctx context.Context, key string, fn func(*record) (*record, error)) error {
	for range maxAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, rev, err := v.store.Get(ctx, key)
		var r *record
		switch {
		case errors.Is(err, aegis.ErrNotFound):
		case err != nil:
			return err
		default:
			if r, err = decodeRecord(b); err != nil {
				return err
			}
		}
		next, err := fn(r)
		if err != nil {
			return err
		}
		enc, err := next.encode()
		if err != nil {
			return err
		}
		if r == nil {
			_, err = v.store.Create(ctx, key, enc)
		} else {
			_, err = v.store.Update(ctx, key, enc, rev)
		}
		if !errors.Is(err, aegis.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%d attempts lost to concurrent writers: %w", maxAttempts, aegis.ErrConflict)
}
