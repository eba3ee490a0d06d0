// Package clusterjoin owns the cluster's join file (docs/cluster.md): the
// secret material every server of one installation shares, so that
// whichever server a request or an event reaches, it is trusted the same:
// the event signing key, the admin root token, the vault's master key, the
// audit log's signing key, the NATS client key every server connects with and the credentials of the
// NATS cluster's routes. `aegis cluster init --out FILE` writes one
// (Create); `aegis server --cluster-join FILE` reads it (Read).
//
// The file is JSON, written 0600 and refused when anyone but its owner
// may read it, like every key file of the platform. Everything in it comes
// from crypto/rand.
package clusterjoin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/strictjson"
)

// Format names the file's kind; Version its layout.
const (
	Format  = "aegis-cluster-join"
	Version = 1
	// maxSize bounds what Read reads: the file is a few hundred bytes.
	maxSize = 16 << 10
	// keyBytes is the size of every random key in the file.
	keyBytes = 32
	// RouteUser is the user name of the NATS cluster's routes.
	RouteUser = "aegis-route"
)

// File is the shared secret material of one cluster.
type File struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// EventKey signs and verifies every event (base64url, 32 bytes).
	EventKey string `json:"event_key"`
	// AdminToken is the admin API's root token (base64url, 32 bytes).
	AdminToken string `json:"admin_token"`
	// MasterKey is the vault's key-encryption key (base64url, 32 bytes).
	MasterKey string `json:"master_key"`
	// AuditKey is the seed of the Ed25519 key that signs the audit log
	// (base64url, 32 bytes): one chain, one key.
	AuditKey string `json:"audit_key"`
	// NATSSeed is the nkey seed every server's NATS connection
	// authenticates with, and the one client a member's NATS accepts.
	NATSSeed string `json:"nats_seed"`
	// RoutePassword authenticates the NATS cluster's routes (base64url,
	// 32 bytes), user RouteUser.
	RoutePassword string `json:"route_password"`
}

// Material is a File decoded: the raw keys.
type Material struct {
	EventKey      []byte
	AdminToken    string
	MasterKey     []byte
	AuditKey      []byte
	NATSSeed      []byte
	RoutePassword string
}

// New makes fresh material.
func New(now time.Time) (*File, error) {
	f := &File{Format: Format, Version: Version, Created: now.UTC()}
	for _, dst := range []*string{&f.EventKey, &f.AdminToken, &f.MasterKey, &f.AuditKey, &f.RoutePassword} {
		b := make([]byte, keyBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("cluster join material: %w", err)
		}
		*dst = base64.RawURLEncoding.EncodeToString(b)
	}
	seed, err := jetstream.NewClientSeed()
	if err != nil {
		return nil, err
	}
	f.NATSSeed = string(seed)
	return f, nil
}

// Create writes fresh material to path (0600), never over an existing
// file: a second `cluster init` must not silently split a cluster.
func Create(path string, now time.Time) error {
	f, err := New(now)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write cluster join file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write cluster join file: %w", err)
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write cluster join file: %s exists; every server of a cluster needs the same file, so it is never replaced (remove it first to start a new cluster): %w", path, aegis.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("write cluster join file: %w", err)
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		os.Remove(path)
		return fmt.Errorf("write cluster join file: %w", err)
	}
	if err := out.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write cluster join file: %w", err)
	}
	return nil
}

// Read reads and checks a join file.
func Read(path string) (*Material, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster join file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("read cluster join file %s: readable by others (mode %04o); chmod 600 it: %w", path, info.Mode().Perm(), aegis.ErrInvalidArgument)
	}
	if info.Size() > maxSize {
		return nil, fmt.Errorf("read cluster join file %s: larger than %d bytes: %w", path, maxSize, aegis.ErrInvalidArgument)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster join file: %w", err)
	}
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("read cluster join file %s: %w", path, err)
	}
	return m, nil
}

// Decode checks a join file's content and returns its material. Its
// errors never quote a value.
func Decode(data []byte) (*Material, error) {
	var f File
	if err := strictjson.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a cluster join file (%v): %w", err, aegis.ErrInvalidArgument)
	}
	if f.Format != Format || f.Version != Version {
		return nil, fmt.Errorf("not a version %d cluster join file: %w", Version, aegis.ErrInvalidArgument)
	}
	m := &Material{AdminToken: f.AdminToken, RoutePassword: f.RoutePassword, NATSSeed: []byte(f.NATSSeed)}
	for name, field := range map[string]struct {
		text string
		dst  *[]byte
	}{"event_key": {f.EventKey, &m.EventKey}, "master_key": {f.MasterKey, &m.MasterKey}, "audit_key": {f.AuditKey, &m.AuditKey}} {
		b, err := base64.RawURLEncoding.DecodeString(field.text)
		if err != nil || len(b) != keyBytes {
			return nil, fmt.Errorf("%s: want %d bytes, base64url: %w", name, keyBytes, aegis.ErrInvalidArgument)
		}
		*field.dst = b
	}
	for name, text := range map[string]string{"admin_token": f.AdminToken, "route_password": f.RoutePassword} {
		if b, err := base64.RawURLEncoding.DecodeString(text); err != nil || len(b) != keyBytes {
			return nil, fmt.Errorf("%s: want %d bytes, base64url: %w", name, keyBytes, aegis.ErrInvalidArgument)
		}
	}
	if _, err := jetstream.SeedPublic(m.NATSSeed); err != nil {
		return nil, fmt.Errorf("nats_seed: %w", err)
	}
	return m, nil
}
