package vault

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// checkKey is the store key of the check record.
const checkKey = "check"

// checkRecord proves which KEK the vault's data keys are wrapped with:
// Sealed is checkPlaintext sealed by it. Next, present only while
// RotateMaster runs, is the same sealed by the KEK it rotates to.
type checkRecord struct {
	Format int    `json:"format"`
	Sealed []byte `json:"sealed"`
	Next   []byte `json:"next,omitempty"`
}

func decodeCheck(b []byte) (*checkRecord, error) {
	if len(b) > 64<<10 {
		return nil, fmt.Errorf("%w: check record of %d bytes", ErrCorrupt, len(b))
	}
	var c checkRecord
	if err := strictjson.Unmarshal(b, &c); err != nil || c.Format != recordFormat || len(c.Sealed) == 0 {
		return nil, fmt.Errorf("%w: malformed check record", ErrCorrupt)
	}
	return &c, nil
}

// opens reports whether kek opens sealed as the check plaintext. A KMS
// that cannot be reached (aegis.ErrUnavailable) is an error, not a wrong
// key.
func opens(ctx context.Context, kek KMS, sealed []byte) (bool, error) {
	p, err := kek.Decrypt(ctx, sealed, checkAD)
	switch {
	case errors.Is(err, aegis.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return false, err
	case err != nil:
		return false, nil
	}
	return bytes.Equal(p, checkPlaintext), nil
}

func (v *Vault) readCheck(ctx context.Context) (*checkRecord, uint64, error) {
	b, rev, err := v.store.Get(ctx, checkKey)
	if err != nil {
		return nil, 0, err
	}
	c, err := decodeCheck(b)
	return c, rev, err
}

// openCheck creates the check record on an empty store, or checks the
// vault's KEK against it.
func (v *Vault) openCheck(ctx context.Context) error {
	for range maxAttempts {
		c, _, err := v.readCheck(ctx)
		if errors.Is(err, aegis.ErrNotFound) {
			sealed, err := v.kek.Encrypt(ctx, checkPlaintext, checkAD)
			if err != nil {
				return fmt.Errorf("seal check record: %w", err)
			}
			enc, _ := json.Marshal(checkRecord{Format: recordFormat, Sealed: sealed})
			if _, err := v.store.Create(ctx, checkKey, enc); errors.Is(err, aegis.ErrConflict) {
				continue // another server created it: check ours against it
			} else if err != nil {
				return fmt.Errorf("write check record: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read check record: %w", err)
		}
		ok, err := opens(ctx, v.kek, c.Sealed)
		if err != nil {
			return fmt.Errorf("check master key: %w", err)
		}
		if ok {
			if c.Next != nil {
				v.log.WarnContext(ctx, "a master key rotation is in progress or did not finish: run rotate-master again to finish it",
					logkey.Security, true)
			}
			return nil
		}
		if c.Next != nil {
			if ok, _ := opens(ctx, v.kek, c.Next); ok {
				return fmt.Errorf("%w (a rotate-master to this key did not finish: start with the previous key and run rotate-master again)", ErrWrongMasterKey)
			}
		}
		return ErrWrongMasterKey
	}
	return fmt.Errorf("create check record: %w", aegis.ErrConflict)
}

// guardWrite refuses a write sealed under a KEK the vault no longer uses:
// after another server's RotateMaster, this one must restart with the new
// key; while one runs elsewhere, writes wait for it.
func (v *Vault) guardWrite(ctx context.Context) error {
	kek, other := v.keks()
	c, _, err := v.readCheck(ctx)
	if err != nil {
		return fmt.Errorf("read check record: %w", err)
	}
	ok, err := opens(ctx, kek, c.Sealed)
	switch {
	case err != nil:
		return fmt.Errorf("check master key: %w", err)
	case !ok:
		return fmt.Errorf("%w (the master key was rotated: restart with the new one)", ErrWrongMasterKey)
	case c.Next != nil && other == nil:
		return fmt.Errorf("a master key rotation is in progress on another server: %w", aegis.ErrUnavailable)
	}
	return nil
}

// RotateMaster re-wraps every data key with newKEK while the vault keeps
// serving, and returns how many data keys are now wrapped by it. Values'
// ciphertexts do not change. Reads keep working throughout: each record
// first gains the key wrapped for newKEK next to the old one (both
// opened), then the check record switches to newKEK (the commit point),
// then the old wrapping is dropped record by record, each change a
// compare-and-set. Every server started with the old key must be
// restarted with the new one; until then it reads, but its writes are
// refused. Interrupted before the switch, run it again; after it, start
// with the new key and run it again with that key to finish.
func (v *Vault) RotateMaster(ctx context.Context, newKEK KMS) (int, error) {
	if newKEK == nil {
		return 0, fmt.Errorf("rotate master key: no new key: %w", aegis.ErrInvalidArgument)
	}
	v.rotateMu.Lock()
	defer v.rotateMu.Unlock()
	n, err := v.rotateMaster(ctx, newKEK)
	if err != nil {
		return n, fmt.Errorf("rotate master key: %w", err)
	}
	v.log.InfoContext(ctx, "vault master key rotated", logkey.Count, n, logkey.Security, true)
	return n, nil
}

func (v *Vault) rotateMaster(ctx context.Context, newKEK KMS) (int, error) {
	c, rev, err := v.readCheck(ctx)
	if err != nil {
		return 0, fmt.Errorf("read check record: %w", err)
	}
	kek, other := v.keks()
	if ok, err := opens(ctx, newKEK, c.Sealed); err != nil {
		return 0, err
	} else if ok {
		if other == nil {
			return 0, fmt.Errorf("the new master key is the current one: %w", aegis.ErrInvalidArgument)
		}
		return v.dropOldWrapping(ctx, newKEK, other) // finish an earlier run
	}
	if ok, err := opens(ctx, kek, c.Sealed); err != nil {
		return 0, err
	} else if !ok {
		return 0, ErrWrongMasterKey
	}
	next, err := newKEK.Encrypt(ctx, checkPlaintext, checkAD)
	if err != nil {
		return 0, fmt.Errorf("seal check record with the new key: %w", err)
	}
	if ok, err := opens(ctx, newKEK, next); err != nil || !ok {
		return 0, fmt.Errorf("the new key does not open what it sealed: %w", errors.Join(err, aegis.ErrInvalidArgument))
	}
	// Announce the rotation: other servers' writes wait for it.
	if rev, err = v.putCheck(ctx, checkRecord{Format: recordFormat, Sealed: c.Sealed, Next: next}, rev); err != nil {
		return 0, err
	}
	v.setKEKs(kek, newKEK)
	// Phase 1: every version gains its key wrapped for newKEK. A second
	// pass catches versions another server wrote before it saw the
	// announcement.
	for pass := range 2 {
		if _, err := v.rewrapAll(ctx, func(vr *versionRecord, app, name string) (bool, error) {
			if pass == 1 && vr.NextKey != nil {
				return false, nil
			}
			wk, err := wrappedFor(ctx, newKEK, kek, vr, app, name)
			vr.NextKey = wk
			return err == nil, err
		}); err != nil {
			v.setKEKs(kek, nil)
			_, _ = v.putCheck(ctx, checkRecord{Format: recordFormat, Sealed: c.Sealed}, rev)
			return 0, err
		}
	}
	// The switch.
	if _, err := v.putCheck(ctx, checkRecord{Format: recordFormat, Sealed: next}, rev); err != nil {
		v.setKEKs(kek, nil)
		return 0, err
	}
	v.setKEKs(newKEK, kek)
	return v.dropOldWrapping(ctx, newKEK, kek)
}

// dropOldWrapping leaves every version with its key wrapped by newKEK
// alone.
func (v *Vault) dropOldWrapping(ctx context.Context, newKEK, oldKEK KMS) (int, error) {
	n, err := v.rewrapAll(ctx, func(vr *versionRecord, app, name string) (bool, error) {
		wk, err := wrappedFor(ctx, newKEK, oldKEK, vr, app, name)
		if err != nil {
			return false, err
		}
		changed := vr.NextKey != nil || !bytes.Equal(wk, vr.WrappedKey)
		vr.WrappedKey, vr.NextKey = wk, nil
		return changed, nil
	})
	if err != nil {
		return n, err // the vault keeps both keys: reads work, run again
	}
	v.setKEKs(newKEK, nil)
	return n, nil
}

func (v *Vault) setKEKs(kek, other KMS) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.kek, v.other = kek, other
	v.kekGen++
}

func (v *Vault) putCheck(ctx context.Context, c checkRecord, rev uint64) (uint64, error) {
	enc, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	rev, err = v.store.Update(ctx, checkKey, enc, rev)
	if err != nil {
		return 0, fmt.Errorf("write check record: %w", err)
	}
	return rev, nil
}

// wrappedFor returns the version's data key wrapped by to: the wrapping it
// already has, or a new one from the wrapping from opens.
func wrappedFor(ctx context.Context, to, from KMS, vr *versionRecord, app, name string) ([]byte, error) {
	for _, wk := range [][]byte{vr.WrappedKey, vr.NextKey} {
		if wk != nil {
			if _, err := unwrapKey(ctx, to, wk, app, name, vr.Version); err == nil {
				return wk, nil
			}
		}
	}
	var err error
	for _, wk := range [][]byte{vr.WrappedKey, vr.NextKey} {
		if wk != nil {
			var nk []byte
			if nk, err = rewrap(ctx, from, to, wk, app, name, vr.Version); err == nil {
				return nk, nil
			}
		}
	}
	return nil, fmt.Errorf("version %d of %s/%s: %w", vr.Version, app, name, err)
}

// rewrapAll applies fn to every version of every secret and to every
// app's data key, one compare-and-set per record, and counts the data
// keys fn changed.
func (v *Vault) rewrapAll(ctx context.Context, fn func(vr *versionRecord, app, name string) (bool, error)) (int, error) {
	keys, err := v.store.Keys(ctx, secretPrefix)
	if err != nil {
		return 0, fmt.Errorf("list secrets: %w", err)
	}
	total := 0
	for _, k := range keys {
		var n int
		err := v.mutate(ctx, k, func(r *record) (*record, error) {
			if r == nil {
				return nil, errUnchanged // removed meanwhile
			}
			n = 0
			for i := range r.Versions {
				changed, err := fn(&r.Versions[i], r.App, r.Name)
				if err != nil {
					return nil, err
				}
				if changed {
					n++
				}
			}
			if n == 0 {
				return nil, errUnchanged
			}
			return r, nil
		})
		if err != nil && !errors.Is(err, errUnchanged) {
			return total, err
		}
		if err == nil {
			total += n
		}
	}
	n, err := v.rewrapDataKeys(ctx, fn)
	return total + n, err
}
