package server

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Audit configures the audit log (docs/audit.md). Zero fields take the
// defaults.
type Audit struct {
	// MaxBytes bounds the AEGIS_AUDIT stream (default 1 GiB). At the bound
	// new records are refused, and with them every admin change, rather
	// than old records dropped.
	MaxBytes int64
	// SecurityWindow is how long security log lines are counted before
	// one record per group is written (default 1 minute).
	SecurityWindow time.Duration
	// CheckpointEvery and CheckpointInterval say when this server seals
	// the chain with a signed checkpoint (defaults 100 records, 1 minute).
	CheckpointEvery    int
	CheckpointInterval time.Duration
}

// auditKeyFile is where the audit signing key lives, under the data dir.
var auditKeyFile = filepath.Join("keys", "audit.key")

// loadAuditKey returns the Ed25519 key that signs audit records: its seed
// is kept like the event signing key (32 bytes from crypto/rand,
// base64url, a 0600 file created on first start). Servers sharing a NATS
// must share this file; it is never logged.
func loadAuditKey(dataDir string) (ed25519.PrivateKey, bool, error) {
	text, created, err := auth.LoadOrCreateSecretFile(filepath.Join(dataDir, auditKeyFile), "audit signing key")
	if err != nil {
		return nil, false, fmt.Errorf("load audit signing key: %w", err)
	}
	seed, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, false, fmt.Errorf("load audit signing key: %s is not a base64url 32-byte key", filepath.Join(dataDir, auditKeyFile))
	}
	return ed25519.NewKeyFromSeed(seed), created, nil
}

// openAudit opens the audit log on the node and starts writing the
// security records counted so far.
func (s *Server) openAudit(ctx context.Context) error {
	var key ed25519.PrivateKey
	if s.join != nil {
		key = ed25519.NewKeyFromSeed(s.join.AuditKey) // one chain, one key, whichever server appends
	} else {
		k, created, err := loadAuditKey(s.cfg.DataDir)
		if err != nil {
			return err
		}
		if created {
			s.log.Info("audit signing key created", logkey.File, filepath.Join(s.cfg.DataDir, auditKeyFile))
		}
		key = k
	}
	stream, err := audit.OnJetStream(ctx, s.node, s.cfg.Audit.MaxBytes)
	if err != nil {
		return err
	}
	s.audit, err = audit.Open(ctx, audit.Config{Stream: stream, Key: key, Logger: s.log,
		CheckpointEvery: s.cfg.Audit.CheckpointEvery, CheckpointInterval: s.cfg.Audit.CheckpointInterval})
	if err != nil {
		return err
	}
	s.security.Attach(s.audit, s.cfg.Logger)
	return nil
}

// closeAudit writes the last security counts and checkpoint; before the
// node closes.
func (s *Server) closeAudit(ctx context.Context) {
	s.security.Close()
	if s.audit != nil {
		s.audit.Close(ctx)
	}
}
