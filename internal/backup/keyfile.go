package backup

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadBackupKey reads the backup key in path: 32 bytes, as base64 (what
// CreateBackupKey writes) or raw, in a file only its owner may read. The
// error never quotes the file's content.
func LoadBackupKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("backup key %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("backup key %s: mode %04o lets others read it: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if fi.Size() > 1024 {
		return nil, fmt.Errorf("backup key %s: not a backup key (%d bytes)", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	defer clear(b)
	if len(b) == KeySize {
		return bytes.Clone(b), nil
	}
	t := bytes.TrimSpace(b)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(t)))
	n, err := base64.StdEncoding.Decode(raw, t)
	if err != nil || n != KeySize {
		clear(raw)
		return nil, fmt.Errorf("backup key %s: not base64 of %d bytes", path, KeySize)
	}
	return raw[:n], nil
}

// LoadOrCreateBackupKey reads the backup key in path, or, when there is
// no such file, creates one: 32 random bytes, base64, mode 0600, in a
// directory created 0700 if needed. created says which.
func LoadOrCreateBackupKey(path string) (key []byte, created bool, err error) {
	key, err = LoadBackupKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, err = NewBackupKey()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("backup key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("backup key: %w", err)
	}
	enc := []byte(base64.StdEncoding.EncodeToString(key) + "\n")
	defer clear(enc)
	_, werr := f.Write(enc)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return nil, false, fmt.Errorf("backup key: %w", err)
	}
	return key, true, nil
}
