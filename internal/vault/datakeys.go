package vault

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// An app's data key encrypts what its functions store (table values and
// objects): one Tink AES256-GCM keyset per app, created on the app's first
// write, wrapped by the KEK like a secret version's data key and rewrapped
// by RotateMaster with them. It lives in the vault's store under
// dataKeyPrefix+app, created with create-only semantics so that servers
// sharing the store agree on one key per app, and is cached unwrapped in
// memory once read: it never changes, only its wrapping does.
const dataKeyPrefix = "d."

// DataOverhead is what SealData adds to a plaintext: Tink's 5-byte key
// prefix, the 12-byte nonce and the 16-byte tag.
const DataOverhead = 5 + 12 + 16

// dataKeyRecord is what the store holds for an app's data key. The wrapped
// keyset's associated data names the app (keyAD with an empty secret name
// and version 0, which no secret version has), so a record copied under
// another app does not open.
type dataKeyRecord struct {
	Format    int       `json:"format"`
	App       string    `json:"app"`
	CreatedAt time.Time `json:"created_at"`
	// RotatedAt is when RotateDataKey last made a new primary key.
	RotatedAt  *time.Time `json:"rotated_at,omitempty"`
	WrappedKey []byte     `json:"wrapped_key"`
	NextKey    []byte     `json:"next_key,omitempty"`
}

func decodeDataKey(b []byte) (*dataKeyRecord, error) {
	if len(b) > 64<<10 {
		return nil, fmt.Errorf("%w: data key record of %d bytes", ErrCorrupt, len(b))
	}
	var r dataKeyRecord
	if err := strictjson.Unmarshal(b, &r); err != nil || r.Format != recordFormat ||
		CheckApp(r.App) != nil || len(r.WrappedKey) == 0 {
		return nil, fmt.Errorf("%w: malformed data key record", ErrCorrupt)
	}
	return &r, nil
}

// wrapping is the record's keys in the shape rotation works on.
func (r *dataKeyRecord) wrapping() versionRecord {
	return versionRecord{Version: 0, WrappedKey: r.WrappedKey, NextKey: r.NextKey}
}

// dataAD binds a sealed value to its app and to where the caller keeps it
// (ad: the table and key, or the object name), so a value copied to
// another key, table, object or app no longer opens.
func dataAD(app string, where []byte) []byte {
	b := make([]byte, 0, 16+len(app)+len(where))
	b = append(b, "aegis-data/1\x00"...)
	b = append(b, app...)
	b = append(b, 0)
	return append(b, where...)
}

// SealData encrypts plaintext with app's data key (created on first use),
// bound to where: what the caller stores it under.
func (v *Vault) SealData(ctx context.Context, app string, where, plaintext []byte) ([]byte, error) {
	k, err := v.dataKey(ctx, app)
	if err != nil {
		return nil, err
	}
	ct, err := k.aead.Encrypt(plaintext, dataAD(app, where))
	if err != nil {
		return nil, fmt.Errorf("seal data of %s: %w", app, err)
	}
	return ct, nil
}

// OpenData decrypts what SealData returned for the same app and where;
// ErrCorrupt when it does not authenticate (damaged, moved, or never
// sealed: data written in the clear is never returned as it is).
func (v *Vault) OpenData(ctx context.Context, app string, where, ciphertext []byte) ([]byte, error) {
	k, err := v.dataKey(ctx, app)
	if err != nil {
		return nil, err
	}
	ad := dataAD(app, where)
	p, err := k.aead.Decrypt(ciphertext, ad)
	if err != nil {
		// Sealed by a key another server added since this one cached
		// the keyset? Read it again, once.
		if fresh, rerr := v.reloadDataKey(ctx, app, k); rerr == nil && fresh != k {
			p, err = fresh.aead.Decrypt(ciphertext, ad)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open data of %s: %w", app, ErrCorrupt)
	}
	return p, nil
}

// MaxDataKeys caps the keys an app's data keyset holds: RotateDataKey adds
// one and keeps the earlier ones, which still open what they sealed.
const MaxDataKeys = 32

// DataKeyInfo describes an app's data key, never the key.
type DataKeyInfo struct {
	App       string    `json:"app"`
	Keys      int       `json:"keys"`
	CreatedAt time.Time `json:"created_at"`
	RotatedAt time.Time `json:"rotated_at,omitzero"`
}

// RotateDataKey adds a new key to app's data keyset and makes it the one
// that seals from now on. Earlier keys stay in the keyset, so everything
// they sealed still opens; a value is sealed by the new key when it is
// next written. Other servers pick the new key up on their next sweep, or
// at once when they meet a value it sealed. aegis.ErrNotFound when the app
// has stored nothing yet (its first write makes a fresh key anyway).
func (v *Vault) RotateDataKey(ctx context.Context, app string) (DataKeyInfo, error) {
	if err := CheckApp(app); err != nil {
		return DataKeyInfo{}, err
	}
	if err := v.guardWrite(ctx); err != nil {
		return DataKeyInfo{}, err
	}
	key := dataKeyPrefix + app
	for range maxAttempts {
		b, rev, err := v.store.Get(ctx, key)
		if errors.Is(err, aegis.ErrNotFound) {
			return DataKeyInfo{}, fmt.Errorf("app %s has no data key yet: %w", app, aegis.ErrNotFound)
		}
		if err != nil {
			return DataKeyInfo{}, err
		}
		r, err := decodeDataKey(b)
		if err != nil {
			return DataKeyInfo{}, err
		}
		wr := r.wrapping()
		h, err := v.unwrapAny(ctx, &wr, app, "")
		if err != nil {
			return DataKeyInfo{}, err
		}
		if n := len(h.KeysetInfo().GetKeyInfo()); n >= MaxDataKeys {
			return DataKeyInfo{}, fmt.Errorf("app %s's data keyset holds %d keys already: %w", app, n, aegis.ErrLimitExceeded)
		}
		m := keyset.NewManagerFromHandle(h)
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return DataKeyInfo{}, fmt.Errorf("new data key: %w", err)
		}
		if err := m.SetPrimary(id); err != nil {
			return DataKeyInfo{}, fmt.Errorf("new data key: %w", err)
		}
		if h, err = m.Handle(); err != nil {
			return DataKeyInfo{}, fmt.Errorf("new data key: %w", err)
		}
		kek, other := v.keks()
		if r.WrappedKey, err = wrapKey(ctx, kek, h, app, "", 0); err != nil {
			return DataKeyInfo{}, err
		}
		r.NextKey = nil
		if other != nil { // a rotation of the master key runs: wrap for both
			if r.NextKey, err = wrapKey(ctx, other, h, app, "", 0); err != nil {
				return DataKeyInfo{}, err
			}
		}
		now := v.now().UTC()
		r.RotatedAt = &now
		enc, err := json.Marshal(r)
		if err != nil {
			return DataKeyInfo{}, err
		}
		rev, err = v.store.Update(ctx, key, enc, rev)
		if errors.Is(err, aegis.ErrConflict) {
			continue
		}
		if err != nil {
			return DataKeyInfo{}, err
		}
		k, err := newAppKey(h, rev)
		if err != nil {
			return DataKeyInfo{}, err
		}
		v.dataKeys.Store(app, k)
		v.log.InfoContext(ctx, "data key rotated", logkey.App, app, logkey.Security, true)
		return DataKeyInfo{App: app, Keys: len(h.KeysetInfo().GetKeyInfo()), CreatedAt: r.CreatedAt, RotatedAt: now}, nil
	}
	return DataKeyInfo{}, fmt.Errorf("%d attempts lost to concurrent writers: %w", maxAttempts, aegis.ErrConflict)
}

// appKey is a cached data key: the keyset's primitive and the revision of
// the record it came from, so a server can tell that another one rotated it.
type appKey struct {
	aead tink.AEAD
	rev  uint64
}

// dataKey returns app's data key, reading it once per process, creating it
// on the first write anywhere.
func (v *Vault) dataKey(ctx context.Context, app string) (*appKey, error) {
	if k, ok := v.dataKeys.Load(app); ok {
		return k.(*appKey), nil
	}
	if err := CheckApp(app); err != nil {
		return nil, err
	}
	k, err := v.loadDataKey(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("data key of %s: %w", app, err)
	}
	actual, _ := v.dataKeys.LoadOrStore(app, k)
	return actual.(*appKey), nil
}

// reloadDataKey reads app's data key again when its record changed since
// k was cached (another server rotated it), and returns the key to use.
func (v *Vault) reloadDataKey(ctx context.Context, app string, k *appKey) (*appKey, error) {
	_, rev, err := v.store.Get(ctx, dataKeyPrefix+app)
	if err != nil || rev == k.rev {
		return k, err
	}
	fresh, err := v.loadDataKey(ctx, app)
	if err != nil {
		return k, fmt.Errorf("data key of %s: %w", app, err)
	}
	v.dataKeys.Store(app, fresh)
	return fresh, nil
}

// RefreshDataKeys reloads the cached data keys another server rotated, so
// this one seals with their new primary key too; the server runs it with
// the vault's sweep. It returns how many it reloaded.
func (v *Vault) RefreshDataKeys(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	v.dataKeys.Range(func(app, k any) bool {
		fresh, err := v.reloadDataKey(ctx, app.(string), k.(*appKey))
		if err != nil {
			errs = append(errs, err)
		} else if fresh != k {
			n++
		}
		return ctx.Err() == nil
	})
	return n, errors.Join(errs...)
}

func (v *Vault) loadDataKey(ctx context.Context, app string) (*appKey, error) {
	key := dataKeyPrefix + app
	for range maxAttempts {
		gen := v.kekGeneration()
		b, rev, err := v.store.Get(ctx, key)
		switch {
		case errors.Is(err, aegis.ErrNotFound):
			a, err := v.createDataKey(ctx, app, key)
			if errors.Is(err, aegis.ErrConflict) {
				continue // another server created it first: read theirs
			}
			return a, err
		case err != nil:
			return nil, err
		}
		r, err := decodeDataKey(b)
		if err != nil {
			return nil, err
		}
		if r.App != app {
			return nil, fmt.Errorf("%w: data key record of another app", ErrCorrupt)
		}
		wr := r.wrapping()
		h, err := v.unwrapAny(ctx, &wr, app, "")
		if err != nil {
			if v.kekGeneration() != gen {
				continue // a rotation step ran between load and unwrap
			}
			return nil, err
		}
		return newAppKey(h, rev)
	}
	return nil, fmt.Errorf("%d attempts lost to concurrent writers: %w", maxAttempts, aegis.ErrConflict)
}

func newAppKey(h *keyset.Handle, rev uint64) (*appKey, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("open data key: %w", err)
	}
	return &appKey{aead: a, rev: rev}, nil
}

// createDataKey makes app's data key and stores it if no server has yet;
// aegis.ErrConflict when one has.
func (v *Vault) createDataKey(ctx context.Context, app, key string) (*appKey, error) {
	if err := v.guardWrite(ctx); err != nil {
		return nil, err
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("new data key: %w", err)
	}
	kek, other := v.keks()
	r := dataKeyRecord{Format: recordFormat, App: app, CreatedAt: v.now().UTC()}
	if r.WrappedKey, err = wrapKey(ctx, kek, h, app, "", 0); err != nil {
		return nil, err
	}
	if other != nil { // a rotation runs: wrap it for both KEKs
		if r.NextKey, err = wrapKey(ctx, other, h, app, "", 0); err != nil {
			return nil, err
		}
	}
	enc, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	rev, err := v.store.Create(ctx, key, enc)
	if err != nil {
		return nil, err
	}
	v.log.InfoContext(ctx, "data key created", logkey.App, app)
	return newAppKey(h, rev)
}

// unwrapAny unwraps a data key with whichever KEK and wrapping fit:
// outside a rotation the vault's KEK and WrappedKey; during one the record
// may already hold the key wrapped for the other KEK.
func (v *Vault) unwrapAny(ctx context.Context, vr *versionRecord, app, name string) (*keyset.Handle, error) {
	kek, other := v.keks()
	err := errOpen
	for _, k := range []KMS{kek, other} {
		if k == nil {
			continue
		}
		for _, wk := range [][]byte{vr.WrappedKey, vr.NextKey} {
			if wk == nil {
				continue
			}
			var h *keyset.Handle
			if h, err = unwrapKey(ctx, k, wk, app, name, vr.Version); err == nil {
				return h, nil
			}
		}
	}
	return nil, err
}

// rewrapDataKeys applies fn to every app's data key, one compare-and-set
// per record, and counts the keys fn changed.
func (v *Vault) rewrapDataKeys(ctx context.Context, fn func(vr *versionRecord, app, name string) (bool, error)) (int, error) {
	keys, err := v.store.Keys(ctx, dataKeyPrefix)
	if err != nil {
		return 0, fmt.Errorf("list data keys: %w", err)
	}
	total := 0
	for _, k := range keys {
		changed, err := v.mutateDataKey(ctx, k, fn)
		if err != nil {
			return total, fmt.Errorf("%s: %w", k, err)
		}
		if changed {
			total++
		}
	}
	return total, nil
}

func (v *Vault) mutateDataKey(ctx context.Context, key string, fn func(vr *versionRecord, app, name string) (bool, error)) (bool, error) {
	for range maxAttempts {
		b, rev, err := v.store.Get(ctx, key)
		if errors.Is(err, aegis.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		r, err := decodeDataKey(b)
		if err != nil {
			return false, err
		}
		wr := r.wrapping()
		changed, err := fn(&wr, r.App, "")
		if err != nil || !changed {
			return false, err
		}
		r.WrappedKey, r.NextKey = wr.WrappedKey, wr.NextKey
		enc, err := json.Marshal(r)
		if err != nil {
			return false, err
		}
		if _, err = v.store.Update(ctx, key, enc, rev); !errors.Is(err, aegis.ErrConflict) {
			return err == nil, err
		}
	}
	return false, fmt.Errorf("%d attempts lost to concurrent writers: %w", maxAttempts, aegis.ErrConflict)
}
