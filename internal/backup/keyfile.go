package backup

import (
	"fmt"

	"github.com/aegis-platform/aegis/internal/vault"
)

// LoadBackupKey reads the backup key in path: 32 bytes, as base64 (what
// LoadOrCreateBackupKey writes) or raw, in a file only its owner may read,
// as a master key file is read (vault.ReadKeyFile). The error never quotes
// the file's content.
func LoadBackupKey(path string) ([]byte, error) {
	k, err := vault.ReadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	return k, nil
}

// LoadOrCreateBackupKey reads the backup key in path, or, when there is
// no such file, creates one first: 32 random bytes, base64, mode 0600, in
// a directory created 0700 if needed (vault.CreateKeyFile). created says
// which.
func LoadOrCreateBackupKey(path string) (key []byte, created bool, err error) {
	if created, err = vault.CreateKeyFile(path); err != nil {
		return nil, false, fmt.Errorf("backup key: %w", err)
	}
	key, err = LoadBackupKey(path)
	return key, created, err
}
