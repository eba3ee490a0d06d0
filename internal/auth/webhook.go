package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// Signed webhooks. A sender signs each request with a secret of the app:
//
//	Aegis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>
//
// The timestamp must be within WebhookWindow of the server's clock, and a
// signature is accepted once: a captured request cannot be sent again.
const (
	WebhookWindow = 5 * time.Minute
	// MaxSignatureHeaderLen caps the header: t, a few v1 values, room for
	// schemes we do not know yet.
	MaxSignatureHeaderLen = 1024
	// maxSignatures caps the v1 values considered (a sender rotating secrets
	// may sign with two).
	maxSignatures = 4
	// DefaultSeenSignatures bounds the replay cache.
	DefaultSeenSignatures = 100_000
	webhookSecretBytes    = 32
)

// SignatureHeader is a parsed signature header.
type SignatureHeader struct {
	Timestamp int64
	// Signatures are the v1 values, each a 32-byte HMAC-SHA256.
	Signatures [][sha256.Size]byte
}

// ParseSignatureHeader parses "t=<unix seconds>,v1=<64 hex digits>[,v1=…]".
// Unknown keys are ignored, so a sender may add a scheme before we know it;
// a missing or repeated t, a malformed v1 or no v1 at all is an error.
func ParseSignatureHeader(h string) (*SignatureHeader, error) {
	if len(h) == 0 || len(h) > MaxSignatureHeaderLen {
		return nil, errMalformed
	}
	out := &SignatureHeader{Timestamp: -1}
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errMalformed
		}
		switch k {
		case "t":
			if out.Timestamp >= 0 || len(v) == 0 || len(v) > 12 || strings.Trim(v, "0123456789") != "" {
				return nil, errMalformed
			}
			out.Timestamp, _ = strconv.ParseInt(v, 10, 64)
		case "v1":
			var sig [sha256.Size]byte
			if len(v) != hex.EncodedLen(sha256.Size) || len(out.Signatures) == maxSignatures {
				return nil, errMalformed
			}
			if _, err := hex.Decode(sig[:], []byte(v)); err != nil {
				return nil, errMalformed
			}
			out.Signatures = append(out.Signatures, sig)
		}
	}
	if out.Timestamp < 0 || len(out.Signatures) == 0 {
		return nil, errMalformed
	}
	return out, nil
}

// SignWebhook returns the header value signing body with secret at t; what
// a sender computes, and what the tests send.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := webhookMAC(secret, ts, body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac[:])
}

func webhookMAC(secret []byte, ts string, body []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// Webhooks verifies signed webhook requests.
type Webhooks struct {
	secrets *WebhookSecrets
	now     func() time.Time
	window  time.Duration
	seen    *seenSignatures
	shared  SeenStore
}

// SeenStore remembers accepted signatures where every server verifying
// the same apps' webhooks sees them, so a request captured on its way to
// one server cannot be replayed to another. Create must fail with
// aegis.ErrConflict when key is already there; entries need to live at
// least SeenTTL.
type SeenStore interface {
	Create(ctx context.Context, key string, v []byte) (uint64, error)
}

// SeenTTL is how long a shared entry must live: a timestamp may be up to
// WebhookWindow in the future and stays acceptable WebhookWindow after it.
const SeenTTL = 2 * WebhookWindow

// NewWebhooks returns a verifier using secrets, remembering up to
// DefaultSeenSignatures signatures in this process and, when shared is not
// nil, every signature in shared as well.
func NewWebhooks(secrets *WebhookSecrets, shared SeenStore) *Webhooks {
	return &Webhooks{secrets: secrets, now: time.Now, window: WebhookWindow, seen: newSeenSignatures(DefaultSeenSignatures), shared: shared}
}

// CheckTimestamp parses the header and checks its timestamp, which costs
// nothing: the gateway calls it before reading the body, so an unsigned or
// stale request is refused without being read.
func (w *Webhooks) CheckTimestamp(header string) (*SignatureHeader, error) {
	sh, err := ParseSignatureHeader(header)
	if err != nil {
		return nil, err
	}
	now := w.now().Unix()
	switch {
	case sh.Timestamp < now-int64(w.window/time.Second):
		return nil, errStaleTimestamp
	case sh.Timestamp > now+int64(w.window/time.Second):
		return nil, errFutureTimestamp
	}
	return sh, nil
}

// Verify checks a request signed with the app's secret called name. Every
// failure is ErrUnauthenticated with a reason ("bad signature", "replayed",
// "stale timestamp", ...); any other error means the secret store could not
// be read or the replay cache is full, and the caller must fail closed.
func (w *Webhooks) Verify(ctx context.Context, app, name, header string, body []byte) error {
	sh, err := w.CheckTimestamp(header)
	if err != nil {
		return err
	}
	secret, err := w.secrets.get(ctx, app, name)
	if errors.Is(err, aegis.ErrNotFound) {
		return errUnknownSecret
	}
	if err != nil {
		return err
	}
	mac := webhookMAC(secret, strconv.FormatInt(sh.Timestamp, 10), body)
	match := -1
	for i := range sh.Signatures {
		// Every value is compared, so the time taken says nothing about
		// which one matched.
		if hmac.Equal(mac[:], sh.Signatures[i][:]) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return errBadSignature
	}
	// Only authentic requests reach the cache, so only a holder of the
	// secret can fill it. The entry lives as long as the timestamp would
	// be accepted.
	expires := time.Unix(sh.Timestamp, 0).Add(w.window)
	if err := w.seen.add(app+"\x00"+name, mac, expires, w.now()); err != nil {
		return err
	}
	if w.shared == nil {
		return nil
	}
	// The local cache answers a replay to this server at no cost; the
	// shared store catches one sent to another server. App and secret
	// names are validated, so the key stays within the KV key alphabet.
	_, err = w.shared.Create(ctx, "sig."+app+"."+name+"."+hex.EncodeToString(mac[:]), []byte(strconv.FormatInt(sh.Timestamp, 10)))
	switch {
	case errors.Is(err, aegis.ErrConflict):
		return errReplayed
	case err != nil:
		return fmt.Errorf("record webhook signature: %w: %w", aegis.ErrUnavailable, err)
	}
	return nil
}

// seenSignatures remembers accepted signatures until their timestamps
// leave the window. It is bounded: when full of live entries it refuses
// (fail closed) rather than forget one and let it be replayed.
type seenSignatures struct {
	mu    sync.Mutex
	max   int
	byKey map[seenKey]time.Time
	order []seenEntry // insertion order, for pruning
	head  int
}

type seenKey struct {
	secret string // app and secret name
	mac    [sha256.Size]byte
}

type seenEntry struct {
	key     seenKey
	expires time.Time
}

// errReplayCacheFull is returned when max live signatures are remembered.
var errReplayCacheFull = fmt.Errorf("webhook replay cache full: %w", aegis.ErrUnavailable)

func newSeenSignatures(max int) *seenSignatures {
	return &seenSignatures{max: max, byKey: map[seenKey]time.Time{}}
}

func (s *seenSignatures) add(secret string, mac [sha256.Size]byte, expires, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := seenKey{secret, mac}
	if exp, ok := s.byKey[k]; ok && now.Before(exp) {
		return errReplayed
	}
	s.prune(now)
	if len(s.byKey) >= s.max {
		return errReplayCacheFull
	}
	s.byKey[k] = expires
	s.order = append(s.order, seenEntry{k, expires})
	return nil
}

// prune drops expired entries from the front of the insertion order.
// Timestamps are not strictly increasing, so an expired entry behind a
// live one waits for it; the window bounds how long.
func (s *seenSignatures) prune(now time.Time) {
	for s.head < len(s.order) && !now.Before(s.order[s.head].expires) {
		e := s.order[s.head]
		if exp, ok := s.byKey[e.key]; ok && !now.Before(exp) {
			delete(s.byKey, e.key)
		}
		s.order[s.head] = seenEntry{}
		s.head++
	}
	if s.head > len(s.order)/2 && s.head > 1024 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	if len(s.byKey) >= s.max {
		// Slow path: expired entries stuck behind live ones.
		for k, exp := range s.byKey {
			if !now.Before(exp) {
				delete(s.byKey, k)
			}
		}
	}
}

// WebhookSecrets creates and reads the per-app secrets that sign webhooks.
// Unlike API keys the secret itself is stored, because checking an HMAC
// needs it; until a vault exists it sits in the store as created.
type WebhookSecrets struct {
	store Store
	now   func() time.Time
	ttl   time.Duration
	cache sync.Map // "app.name" → *cachedSecret
}

type cachedSecret struct {
	secret  []byte
	fetched time.Time
}

// webhookRecord is what the store holds for one secret.
type webhookRecord struct {
	App       string    `json:"app"`
	Name      string    `json:"name"`
	Secret    []byte    `json:"secret"` // base64 in JSON
	CreatedAt time.Time `json:"created_at"`
}

const webhookPrefix = "whsec." // whsec.<app>.<name> → JSON record

// NewWebhookSecrets returns secrets backed by store.
func NewWebhookSecrets(store Store) *WebhookSecrets {
	return &WebhookSecrets{store: store, now: time.Now, ttl: CacheTTL}
}

// Create makes a new 32-byte secret called name for app and returns it
// base64url-encoded (no padding), the only time it is shown. A name that
// exists is aegis.ErrConflict: a secret is never silently replaced.
func (s *WebhookSecrets) Create(ctx context.Context, app, name string) (string, error) {
	key, err := webhookKey(app, name)
	if err != nil {
		return "", fmt.Errorf("create webhook secret: %w", err)
	}
	rec := webhookRecord{App: app, Name: name, Secret: make([]byte, webhookSecretBytes), CreatedAt: s.now().UTC()}
	if err := randomBytes(rec.Secret); err != nil {
		return "", fmt.Errorf("create webhook secret %s/%s: %w", app, name, err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("create webhook secret %s/%s: %w", app, name, err)
	}
	if _, err := s.store.Create(ctx, key, b); err != nil {
		return "", fmt.Errorf("create webhook secret %s/%s: %w", app, name, err)
	}
	return base64.RawURLEncoding.EncodeToString(rec.Secret), nil
}

// get returns the secret, from the cache while it is fresh.
func (s *WebhookSecrets) get(ctx context.Context, app, name string) ([]byte, error) {
	key, err := webhookKey(app, name)
	if err != nil {
		return nil, aegis.ErrNotFound
	}
	now := s.now()
	if v, ok := s.cache.Load(key); ok {
		c := v.(*cachedSecret)
		if age := now.Sub(c.fetched); age >= 0 && age < s.ttl {
			return c.secret, nil
		}
	}
	b, _, err := s.store.Get(ctx, key)
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook secret: %w: %w", aegis.ErrUnavailable, err)
	}
	var rec webhookRecord
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Secret) < 16 {
		return nil, fmt.Errorf("read webhook secret: malformed record: %w", aegis.ErrUnavailable)
	}
	s.cache.Store(key, &cachedSecret{secret: rec.Secret, fetched: now})
	return rec.Secret, nil
}

// webhookKey builds the store key; app and name are checked first, so
// neither can add a token to the KV subject.
func webhookKey(app, name string) (string, error) {
	if err := manifest.CheckAppName(app); err != nil {
		return "", fmt.Errorf("app %q: %w: %w", app, err, aegis.ErrInvalidArgument)
	}
	if err := manifest.CheckSecretName(name); err != nil {
		return "", fmt.Errorf("secret name %q: %w: %w", name, err, aegis.ErrInvalidArgument)
	}
	return webhookPrefix + app + "." + name, nil
}
