package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// adminTokenBytes is the admin token's entropy: 256 bits, like an API key's secret.
const adminTokenBytes = 32

// minAdminTokenLen refuses a hand-written token file too short to be safe.
const minAdminTokenLen = 32

// maxAdminTokenFile bounds what is read from the token file.
const maxAdminTokenFile = 4 << 10

// LoadOrCreateAdminToken returns the admin token kept in the file at path.
// On first start the file does not exist: it creates a token of 32 random
// bytes (base64url, unpadded), writes it atomically with mode 0600 — a temp
// file in the same directory, fsynced, then renamed — creating the parent
// directory with mode 0700 if needed, and reports created. It never logs the
// token; printing it once for the operator is the caller's decision.
//
// On later starts it reads the file and refuses it when the group or others
// have any permission on it, because anyone who can read the file owns the
// platform. The error says which file and how to fix it.
func LoadOrCreateAdminToken(path string) (token string, created bool, err error) {
	return LoadOrCreateSecretFile(path, "admin token")
}

// LoadOrCreateSecretFile keeps any platform secret the way the admin token
// is kept (same creation, modes and refusals); label names it in errors,
// e.g. "event signing key".
func LoadOrCreateSecretFile(path, label string) (secret string, created bool, err error) {
	token, err := readAdminToken(path, label)
	if err == nil {
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	token, err = writeAdminToken(path, label)
	if err != nil {
		return "", false, err
	}
	return token, true, nil
}

func readAdminToken(path, label string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", label, err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of
	// the file read.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", label, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("read %s: %s is not a regular file", label, path)
	}
	// Windows has no Unix permission bits to check; its ACLs are the
	// operator's business there.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", fmt.Errorf("read %s: refusing %s: it is accessible by group or others (mode %04o), "+
			"so anyone on this machine could take over the platform; fix it with: chmod 600 %s", label, path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAdminTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", label, err)
	}
	if len(b) > maxAdminTokenFile {
		return "", fmt.Errorf("read %s: %s is larger than %d bytes", label, path, maxAdminTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minAdminTokenLen || !isToken68(tok) {
		// Says nothing about the content, which might be a real token.
		return "", fmt.Errorf("read %s: %s must hold one token of at least %d characters (letters, digits, -._~+/)", label, path, minAdminTokenLen)
	}
	return tok, nil
}

func writeAdminToken(path, label string) (string, error) {
	var raw [adminTokenBytes]byte
	if err := randomBytes(raw[:]); err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])

	dir := filepath.Dir(path)
	// An existing directory keeps its mode: it may be a data directory the
	// operator set up; the file's own 0600 is what protects the token.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	// CreateTemp opens with mode 0600, so the token is never readable by
	// others, not even for the instant before a chmod.
	tmp, err := os.CreateTemp(dir, ".admin-token-*")
	if err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return "", fmt.Errorf("create %s: %w", label, err)
	}
	ok = true
	// Make the rename itself durable; a crash must not lose a token the
	// operator has already been shown.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return tok, nil
}

// AdminTokenMatches reports whether presented is the admin token, in time
// that depends on neither value: both are hashed first, so not even the
// length of the expected token leaks. An empty expected token matches
// nothing, so a missing configuration fails closed.
func AdminTokenMatches(expected, presented string) bool {
	if expected == "" {
		return false
	}
	e := sha256.Sum256([]byte(expected))
	p := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(e[:], p[:]) == 1
}
