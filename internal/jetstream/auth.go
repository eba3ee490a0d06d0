package jetstream

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/aegis-platform/aegis"
)

// A NATS port the embedded server opens — for clients (Listen) or for
// cluster routes — is never open to anyone: clients authenticate with an
// nkey (a challenge signed with the seed, which never crosses the wire),
// routes with the cluster's route credentials. The platform's streams live
// in NATS's global account, the only one with JetStream; the system
// account ($SYS) is kept apart and no user is put in it, so no credential
// the platform hands out reaches the server's own administration. Functions
// never get a NATS credential at all: they reach state through the host.

// NewClientSeed makes the seed of a new client nkey (a NATS user key):
// what an embedded server reachable from outside accepts, and what a peer
// server connects with.
func NewClientSeed() ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create nats client key: %w", err)
	}
	return kp.Seed()
}

// ReadSeedFile reads an nkey seed file (what --nats-nkey names): a file
// its owner alone may read, holding one user seed ("SU…").
func ReadSeedFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("nats nkey file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("nats nkey file %s: readable by others (mode %04o); chmod 600 it: %w", path, info.Mode().Perm(), aegis.ErrInvalidArgument)
	}
	if info.Size() > 4096 {
		return nil, fmt.Errorf("nats nkey file %s: too large for a seed: %w", path, aegis.ErrInvalidArgument)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nats nkey file: %w", err)
	}
	seed := bytes.TrimSpace(raw)
	if _, err := userKey(seed); err != nil {
		return nil, fmt.Errorf("nats nkey file %s: %w", path, err)
	}
	return seed, nil
}

// userKey checks that seed is a user nkey seed and returns its pair.
func userKey(seed []byte) (nkeys.KeyPair, error) {
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("not an nkey seed: %w", aegis.ErrInvalidArgument)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("not a user nkey seed (SU…): %w", aegis.ErrInvalidArgument)
	}
	return kp, nil
}

// SeedPublic is the public key of a user seed ("U…"), safe to log.
func SeedPublic(seed []byte) (string, error) {
	kp, err := userKey(seed)
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// nkeyOption authenticates a connection with seed.
func nkeyOption(seed []byte) (nats.Option, error) {
	kp, err := userKey(seed)
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// serverAuth makes the embedded server accept only the client nkey of
// seed, in the global account (JetStream's).
func serverAuth(opts *server.Options, seed []byte) error {
	pub, err := SeedPublic(seed)
	if err != nil {
		return fmt.Errorf("nats client key: %w", err)
	}
	opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	return nil
}

// listenerTLS loads the certificate the client port serves.
func listenerTLS(cert, key string) (*tls.Config, error) {
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert, KeyFile: key})
	if err != nil {
		return nil, fmt.Errorf("nats listener certificate: %w", err)
	}
	return tc, nil
}

// LoadOrCreateSeedFile returns the seed in path, creating the file (0600,
// in a 0700 directory, never over an existing one) with a new seed when
// it does not exist.
func LoadOrCreateSeedFile(path string) (seed []byte, created bool, err error) {
	seed, err = ReadSeedFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return seed, false, err
	}
	if seed, err = NewClientSeed(); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("nats nkey file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("nats nkey file: %w", err)
	}
	_, werr := f.Write(append(seed, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("nats nkey file: %w", werr)
	}
	return seed, true, nil
}
