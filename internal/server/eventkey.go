package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/jetstream"
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

// trustWait bounds how long a starting server waits for the trust
// bucket of a cluster still electing its leaders.
const trustWait = time.Minute

// trustBucket holds the checks every server on one NATS compares its own
// keys with: a value derived from a key, never the key.
const trustBucket = "aegis_trust"

// checkEventKey refuses to start a server whose event signing key is not
// the one the servers already on this NATS use: every event it published
// would be dead-lettered by the others as forged, and theirs by it. The
// first server records an HMAC of a fixed label under the key; the others
// compare theirs with it.
func (s *Server) checkEventKey(ctx context.Context, key []byte) error {
	bucket, err := s.node.Bucket(ctx, trustBucket, jetstream.BucketOptions{History: 1,
		Description: "checks of the keys every server on this NATS must share (never the keys)"})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("aegis event signing key check v1"))
	sum := hex.EncodeToString(mac.Sum(nil))
	// Members of a new cluster start together: the bucket's stream may
	// still be electing its leader, or a replica catching up with the
	// record another member just created. Unavailable is waited out, for
	// as long as a start may take; anything else is an answer.
	var stored []byte
	deadline := time.Now().Add(trustWait)
	for {
		_, err = bucket.Create(ctx, "event-key", []byte(sum))
		if err == nil {
			return nil
		}
		if errors.Is(err, aegis.ErrConflict) {
			stored, _, err = bucket.Get(ctx, "event-key")
		}
		if err == nil {
			break
		}
		if !errors.Is(err, aegis.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if !hmac.Equal(stored, []byte(sum)) {
		return fmt.Errorf("event signing key: this server's is not the one the servers already on this NATS use, so every event between them would be refused as forged; start every server with the same --cluster-join FILE (aegis cluster init): %w", aegis.ErrConflict)
	}
	return nil
}
