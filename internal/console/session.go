package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aegis-platform/aegis"
)

// Store is where sessions live: a JetStream key-value bucket whose TTL is
// at least Config.Lifetime, shared by every server of a cluster, so a
// session started on one is accepted by all and a sign-out ends it on all.
type Store interface {
	// Get returns aegis.ErrNotFound when the key is missing.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
	Delete(ctx context.Context, key string) error
}

// session is what the store holds for one signed-in browser. It never
// holds the admin token: a named token is found again by its id (which is
// not secret) and a session of the bootstrap token keeps only the SHA-256
// of that 256-bit token, so reading the bucket signs no one in.
type session struct {
	Name string `json:"name"`
	// TokenID is the named admin token's id; empty for the bootstrap
	// token, whose session holds Proof instead.
	TokenID string `json:"token_id,omitempty"`
	Proof   string `json:"proof,omitempty"`
	// CSRF is the per-session token every form sends back.
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
}

// sessionIDBytes is the size of the cookie's random secret.
const sessionIDBytes = 32

// seenSpacing is how often a session's last activity is written at most:
// the idle expiry needs it to the minute, not to the request.
const seenSpacing = time.Minute

var errNoSession = errors.New("no session")

// newSecret returns n random bytes, base64url without padding.
func newSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// storeKey is where the session of cookie value id is kept: its hash, so
// the bucket's keys are no cookies either.
func storeKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "s." + hex.EncodeToString(sum[:])
}

// proofOf is what a bootstrap-token session keeps of the token.
func proofOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func sameSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sessions reads and writes sessions with their expiry.
type sessions struct {
	store    Store
	idle     time.Duration
	lifetime time.Duration
	now      func() time.Time
}

// start stores a new session and returns the cookie value.
func (s *sessions) start(ctx context.Context, rec session) (string, *session, error) {
	id, err := newSecret(sessionIDBytes)
	if err != nil {
		return "", nil, err
	}
	if rec.CSRF, err = newSecret(32); err != nil {
		return "", nil, err
	}
	now := s.now().UTC()
	rec.Created, rec.Seen = now, now
	b, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	if _, err := s.store.Put(ctx, storeKey(id), b); err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	return id, &rec, nil
}

// get returns the live session of cookie value id, noting the activity;
// errNoSession when there is none or it has expired (idle or absolute),
// any other error when the store could not be read.
func (s *sessions) get(ctx context.Context, id string) (*session, error) {
	if len(id) != base64.RawURLEncoding.EncodedLen(sessionIDBytes) {
		return nil, errNoSession
	}
	key := storeKey(id)
	b, _, err := s.store.Get(ctx, key)
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	var rec session
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, errNoSession // a damaged record signs no one in
	}
	now := s.now()
	if now.Sub(rec.Created) > s.lifetime || now.Sub(rec.Seen) > s.idle {
		_ = s.store.Delete(ctx, key)
		return nil, errNoSession
	}
	if now.Sub(rec.Seen) > seenSpacing {
		rec.Seen = now.UTC()
		if nb, err := json.Marshal(rec); err == nil {
			// Best effort: a failed write only brings the idle expiry
			// nearer.
			_, _ = s.store.Put(ctx, key, nb)
		}
	}
	return &rec, nil
}

// end deletes the session of cookie value id, on every server at once.
func (s *sessions) end(ctx context.Context, id string) error {
	if err := s.store.Delete(ctx, storeKey(id)); err != nil && !errors.Is(err, aegis.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
