package adminapi

import "time"

// Secret describes one secret of an app's vault (GET
// /v1/apps/{app}/secrets and the answer of a set or a rotation): its name,
// its current version and every version still readable. It never carries
// a value.
type Secret struct {
	App       string          `json:"app"`
	Name      string          `json:"name"`
	Version   int             `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Versions  []SecretVersion `json:"versions,omitempty"`
}

// SecretVersion is one readable version of a secret; ExpiresAt is set on a
// version a rotation replaced, readable until then.
type SecretVersion struct {
	Version   int        `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// MaxSecretSize is the largest secret value the vault stores.
const MaxSecretSize = 64 << 10

// DataKeyRotation is the answer of POST /v1/apps/{app}/data-key/rotate:
// the app's data keyset now seals with a new key; Keys counts every key it
// holds (the earlier ones still open what they sealed). Never a key.
type DataKeyRotation struct {
	App       string    `json:"app"`
	Keys      int       `json:"keys"`
	CreatedAt time.Time `json:"created_at"`
	RotatedAt time.Time `json:"rotated_at"`
}

// MasterRotation is the answer of POST /v1/vault/rotate-master: how many
// data keys the new master key now wraps, and the key file that holds it
// (the old key kept beside it as KeyFile+".previous").
type MasterRotation struct {
	Rewrapped int    `json:"rewrapped"`
	KeyFile   string `json:"key_file"`
}
