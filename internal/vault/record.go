package vault

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// record is what the store holds under a secret's key: every live version
// of one secret, each an envelope (wrapped data key, ciphertext). Nothing in
// it is a value in the clear. Dates are not authenticated (they change when
// a later version sets an expiry); app, name and version are, through the
// associated data of both ciphertexts.
type record struct {
	Format   int             `json:"format"`
	App      string          `json:"app"`
	Name     string          `json:"name"`
	Current  int             `json:"current"`
	Versions []versionRecord `json:"versions"`
}

type versionRecord struct {
	Version   int        `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// WrappedKey is the data keyset encrypted by the KEK named in the
	// check record; NextKey, present only while RotateMaster runs, the
	// same keyset encrypted by the KEK it rotates to.
	WrappedKey []byte `json:"wrapped_key"`
	NextKey    []byte `json:"next_key,omitempty"`
	Ciphertext []byte `json:"ciphertext"`
}

const (
	recordFormat = 1
	// maxRecordSize bounds what decodeRecord reads from the store:
	// MaxVersions values of MaxValueSize, base64, with room for the rest.
	maxRecordSize = MaxVersions * (MaxValueSize + 1024) * 4 / 3
)

var errRecord = fmt.Errorf("malformed vault record: %w", ErrCorrupt)

// decodeRecord parses a record read from the store. The store is not
// trusted to hold what the vault wrote: the bytes are decoded strictly
// (unknown fields refused) and every invariant the vault relies on is
// checked, so a damaged record is an error and never a panic or a wrong
// answer. Whether the ciphertexts authenticate is checked later, on use.
func decodeRecord(b []byte) (*record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", errRecord, len(b))
	}
	var r record
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", errRecord, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", errRecord, err)
	}
	return &r, nil
}

func (r *record) check() error {
	switch {
	case r.Format != recordFormat:
		return fmt.Errorf("format %d", r.Format)
	case CheckApp(r.App) != nil:
		return errors.New("bad app")
	case CheckName(r.Name) != nil:
		return errors.New("bad name")
	case len(r.Versions) == 0 || len(r.Versions) > MaxVersions:
		return fmt.Errorf("%d versions", len(r.Versions))
	}
	for i, v := range r.Versions {
		switch {
		case v.Version < 1:
			return fmt.Errorf("version %d", v.Version)
		case i > 0 && v.Version <= r.Versions[i-1].Version:
			return errors.New("versions out of order")
		case len(v.WrappedKey) == 0 || len(v.Ciphertext) == 0:
			return fmt.Errorf("version %d: empty envelope", v.Version)
		case len(v.Ciphertext) > MaxValueSize+1024:
			return fmt.Errorf("version %d: ciphertext too large", v.Version)
		}
	}
	last := r.Versions[len(r.Versions)-1]
	if r.Current != last.Version || last.ExpiresAt != nil {
		return errors.New("current version is not the last, or expires")
	}
	return nil
}

func (r *record) encode() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return json.Marshal(r)
}

// version returns the record's version n, or nil.
func (r *record) version(n int) *versionRecord {
	for i := range r.Versions {
		if r.Versions[i].Version == n {
			return &r.Versions[i]
		}
	}
	return nil
}

// prune drops the versions whose overlap has ended; it reports whether any
// were.
func (r *record) prune(now time.Time) bool {
	kept := r.Versions[:0]
	for _, v := range r.Versions {
		if v.ExpiresAt == nil || now.Before(*v.ExpiresAt) {
			kept = append(kept, v)
		}
	}
	dropped := len(kept) != len(r.Versions)
	clear(r.Versions[len(kept):]) // no envelope left behind in the slice
	r.Versions = kept
	return dropped
}

func (r *record) info() Info {
	in := Info{App: r.App, Name: r.Name, Version: r.Current}
	for _, v := range r.Versions {
		vi := VersionInfo{Version: v.Version, CreatedAt: v.CreatedAt}
		if v.ExpiresAt != nil {
			vi.ExpiresAt = *v.ExpiresAt
		}
		in.Versions = append(in.Versions, vi)
	}
	return in
}
