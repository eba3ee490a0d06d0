package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/aegis-platform/aegis"
)

// MasterKeyEnv is the environment variable that may hold the master key
// (base64 of 32 bytes).
const MasterKeyEnv = "AEGIS_MASTER_KEY"

// MasterKeyOptions says where LoadMasterKey looks.
type MasterKeyOptions struct {
	// Key is the cluster's master key from its join file (32 bytes):
	// used before anything else when set.
	Key []byte
	// File is --master-key-file: read it, never create it.
	File string
	// LookupEnv reads the environment (os.LookupEnv when nil).
	LookupEnv func(string) (string, bool)
	// ConfigDir replaces os.UserConfigDir for the default file.
	ConfigDir string
}

// MasterKeySource says where the master key came from.
type MasterKeySource string

const (
	SourceFile        MasterKeySource = "file"        // --master-key-file
	SourceEnv         MasterKeySource = "environment" // AEGIS_MASTER_KEY
	SourceDefaultFile MasterKeySource = "default file"
	SourceTransit     MasterKeySource = "transit" // HashiCorp Vault Transit (server.Config.Transit)
	SourceClusterJoin MasterKeySource = "cluster join file"
)

// MasterKeyInfo is what the server logs about the master key: where it
// came from, never its value.
type MasterKeyInfo struct {
	Source MasterKeySource
	// Path is the key file's path (empty for the environment).
	Path string
	// Created is true when the default file was created by this call.
	Created bool
}

// LoadMasterKey returns the local master key as a KMS, from the first of:
// opts.Key (the cluster join file's), opts.File, AEGIS_MASTER_KEY, the default file
// <user config dir>/aegis/master.key, which it creates (0600, in a 0700
// directory, 32 random bytes) when it does not exist. A key file must be
// readable by its owner alone and hold 32 bytes, raw or base64; anything
// else is refused naming the file and never replaced.
func LoadMasterKey(opts MasterKeyOptions) (KMS, MasterKeyInfo, error) {
	if len(opts.Key) > 0 {
		k, err := NewLocalKMS(opts.Key)
		if err != nil {
			return nil, MasterKeyInfo{}, fmt.Errorf("master key from the cluster join file: %w", err)
		}
		return k, MasterKeyInfo{Source: SourceClusterJoin}, nil
	}
	if opts.File != "" {
		k, err := readKeyFile(opts.File)
		if err != nil {
			return nil, MasterKeyInfo{}, err
		}
		return k, MasterKeyInfo{Source: SourceFile, Path: opts.File}, nil
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if s, ok := lookup(MasterKeyEnv); ok {
		raw, err := parseKey([]byte(s), false)
		if err != nil {
			return nil, MasterKeyInfo{}, fmt.Errorf("master key from %s: %w", MasterKeyEnv, err)
		}
		k, err := NewLocalKMS(raw)
		clear(raw)
		if err != nil {
			return nil, MasterKeyInfo{}, err
		}
		return k, MasterKeyInfo{Source: SourceEnv}, nil
	}
	dir := opts.ConfigDir
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return nil, MasterKeyInfo{}, fmt.Errorf("master key: no user config directory (use --master-key-file or %s): %w", MasterKeyEnv, err)
		}
		dir = d
	}
	path := filepath.Join(dir, "aegis", "master.key")
	created, err := CreateKeyFile(path)
	if err != nil {
		return nil, MasterKeyInfo{}, fmt.Errorf("master key: %w", err)
	}
	k, err := readKeyFile(path)
	if err != nil {
		return nil, MasterKeyInfo{}, err
	}
	return k, MasterKeyInfo{Source: SourceDefaultFile, Path: path, Created: created}, nil
}

// DefaultMasterKeyPath is where LoadMasterKey keeps the key when neither a
// file nor the environment names one.
func DefaultMasterKeyPath() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "aegis", "master.key"), nil
}

// CreateKeyFile writes a new random 32-byte key, base64 and a newline, to
// path (mode 0600, its directory 0700 if it is made) unless a file is
// there; created says whether it wrote one (O_EXCL: of two processes
// starting at once, one creates and both read it). The master key and the
// backup key are such files.
func CreateKeyFile(path string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	line := base64.StdEncoding.AppendEncode(nil, key)
	clear(key)
	_, err = f.Write(append(line, '\n'))
	clear(line)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // never leave a half-written key to be read later
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// ReadKeyFile reads a 32-byte key from path: base64 (spaces and a final
// newline allowed) or 32 raw bytes, in a regular file only its owner may
// read. Errors name the path, never the content.
func ReadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets others read it: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if fi.Size() > 1024 {
		return nil, fmt.Errorf("%s: not a key file (%d bytes)", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := parseKey(b, true)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

// readKeyFile is the local KMS of the master key file at path.
func readKeyFile(path string) (KMS, error) {
	raw, err := ReadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	k, err := NewLocalKMS(raw)
	clear(raw)
	return k, err
}

// parseKey reads a key as base64 of 32 bytes (spaces and a final newline
// allowed), or, from a file, 32 raw bytes. The error never quotes the
// input.
func parseKey(b []byte, rawOK bool) ([]byte, error) {
	if rawOK && len(b) == MasterKeySize {
		return bytes.Clone(b), nil
	}
	t := bytes.TrimSpace(b)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(t)))
	n, err := base64.StdEncoding.Decode(raw, t)
	if err != nil {
		clear(raw)
		return nil, fmt.Errorf("not base64 of %d bytes (make one with: head -c %d /dev/urandom | base64)", MasterKeySize, MasterKeySize)
	}
	if n != MasterKeySize {
		clear(raw)
		return nil, fmt.Errorf("%d bytes, want %d (make one with: head -c %d /dev/urandom | base64)", n, MasterKeySize, MasterKeySize)
	}
	return raw[:n], nil
}

// RotateMasterFile gives the vault a new master key kept in the key file at
// path, while it serves: the new key is written first to path+".next"
// (0600), every data key is re-wrapped under it (RotateMaster), and only
// then does it become path, the old key kept as path+".previous" until the
// next rotation. Interrupted before the files are swapped, the vault is
// still readable with the old key for the records not yet re-wrapped and
// with the .next key for the others: docs/vault.md says how to finish. A
// .next file left by such an interruption stops a new rotation until the
// operator has dealt with it.
func RotateMasterFile(ctx context.Context, v *Vault, path string) (int, error) {
	next := path + ".next"
	created, err := CreateKeyFile(next)
	if err != nil {
		return 0, fmt.Errorf("master key: %w", err)
	}
	if !created {
		return 0, fmt.Errorf("master key: %s exists, left by an interrupted rotation (docs/vault.md): %w", next, aegis.ErrConflict)
	}
	kek, err := readKeyFile(next)
	if err != nil {
		return 0, err
	}
	n, err := v.RotateMaster(ctx, kek)
	if err != nil {
		return n, fmt.Errorf("master key rotation (the new key is in %s): %w", next, err)
	}
	if err := os.Rename(path, path+".previous"); err != nil {
		return n, fmt.Errorf("master key rotation: every data key is wrapped by %s, but it could not replace %s: %w", next, path, err)
	}
	if err := os.Rename(next, path); err != nil {
		return n, fmt.Errorf("master key rotation: every data key is wrapped by %s, but it could not become %s: %w", next, path, err)
	}
	return n, nil
}
