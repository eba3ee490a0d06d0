package server

import (
	"encoding/base64"
	"fmt"
	"path/filepath"

	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// eventKeyFile is where the event signing key lives, under the data dir.
var eventKeyFile = filepath.Join("keys", "events.key")

// loadEventKey returns the key the bus signs and verifies events with. It
// is kept exactly like the admin token, by the same code: 32 bytes from
// crypto/rand, base64url, created on first start by an atomic write of a
// 0600 file in a 0700 directory, and refused when the group or others can
// read it, since whoever holds it can forge events. Servers sharing an
// external NATS must share this file. It is never logged.
func loadEventKey(dataDir string) (key []byte, created bool, err error) {
	path := filepath.Join(dataDir, eventKeyFile)
	text, created, err := auth.LoadOrCreateSecretFile(path, "event signing key")
	if err != nil {
		return nil, false, fmt.Errorf("load event signing key: %w", err)
	}
	key, err = base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(key) < bus.KeySize {
		// Says nothing about the content, which might be a real key.
		return nil, false, fmt.Errorf("load event signing key: %s must hold at least %d random bytes, base64url without padding", path, bus.KeySize)
	}
	return key, created, nil
}

// eventKey is the cluster join file's event key when the server has one,
// else this data directory's.
func (s *Server) eventKey() ([]byte, error) {
	if s.join != nil {
		return s.join.EventKey, nil
	}
	key, created, err := loadEventKey(s.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("event signing key created", logkey.File, filepath.Join(s.cfg.DataDir, eventKeyFile))
	}
	return key, nil
}
