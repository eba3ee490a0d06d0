package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/manifest"
)

// An admin token reads aegisadm_<id>_<secret>, built like an API key (see
// keyformat.go) but with its own prefix, so that neither can be mistaken
// for the other — by a person, a secret scanner or the admin API, which
// looks at the prefix to choose the verifier.
const (
	AdminTokenPrefix = "aegisadm_"
	adminTokenLen    = len(AdminTokenPrefix) + idChars + 1 + secretChars
)

// Store layout of admin tokens, in their own bucket (aegis_admin_tokens).
const (
	adminRecordPrefix = "token." // token.<id>  → JSON adminRecord
	adminNamePrefix   = "name."  // name.<name> → id
	adminUsedPrefix   = "used."  // used.<id>   → RFC 3339 time of last use
)

// adminUsedSpacing is how often a token's last use is written at most, per
// node: often enough to answer "is this token still used?", rarely enough
// that a busy script does not turn every call into a write.
const adminUsedSpacing = time.Minute

// adminRecord is what the store holds for one admin token.
type adminRecord struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// Hash is "sha256:" and the hex SHA-256 of the 32 secret bytes, as for
	// API keys (see record.Hash for why a fast hash is right).
	Hash      string     `json:"hash"`
	Role      rbac.Role  `json:"role"`
	Apps      []string   `json:"apps,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// AdminTokenInfo describes an admin token without its secret.
type AdminTokenInfo struct {
	Name       string
	Role       rbac.Role
	Apps       []string // empty: every app
	CreatedAt  time.Time
	Revoked    bool
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

// AdminTokens creates, verifies, lists and revokes the named admin tokens
// that carry a role. The bootstrap token in DATA/admin.token is not one of
// them (see AdminTokenMatches).
//
// Unlike API keys, verified records are not cached: admin calls are few, so
// one store read per call costs nothing, and a revocation holds at once on
// every node.
type AdminTokens struct {
	store Store
	now   func() time.Time

	// used maps id → time.Time of the last last-used write by this node.
	used sync.Map
}

// NewAdminTokens returns admin tokens kept in store.
func NewAdminTokens(store Store) *AdminTokens {
	return &AdminTokens{store: store, now: time.Now}
}

// Create makes an admin token called name with role, limited to apps (none:
// every app), and returns its plaintext, which is shown once and never
// stored. Names are unique for the life of the store, revoked tokens
// included, and "root" is reserved for the bootstrap token. A bad name,
// role or app is aegis.ErrInvalidArgument; a taken name aegis.ErrConflict.
func (t *AdminTokens) Create(ctx context.Context, name string, role rbac.Role, apps []string) (string, error) {
	if err := validateAdminTokenName(name); err != nil {
		return "", fmt.Errorf("create admin token: %w", err)
	}
	if _, err := rbac.ParseRole(string(role)); err != nil {
		return "", fmt.Errorf("create admin token %q: %w: %w", name, aegis.ErrInvalidArgument, err)
	}
	apps, err := normalizeApps(apps)
	if err != nil {
		return "", fmt.Errorf("create admin token %q: %w", name, err)
	}
	if _, _, err := t.store.Get(ctx, adminNamePrefix+name); err == nil {
		return "", fmt.Errorf("create admin token %q: name taken: %w", name, aegis.ErrConflict)
	} else if !errors.Is(err, aegis.ErrNotFound) {
		return "", fmt.Errorf("create admin token %q: %w", name, err)
	}

	rec := adminRecord{Name: name, Role: role, Apps: apps, CreatedAt: t.now().UTC()}
	var secret [secretBytes]byte
	if err := randomBytes(secret[:]); err != nil {
		return "", fmt.Errorf("create admin token %q: %w", name, err)
	}
	sum := sha256.Sum256(secret[:])
	rec.Hash = hashScheme + hex.EncodeToString(sum[:])
	if err := t.createRecord(ctx, &rec); err != nil {
		return "", fmt.Errorf("create admin token %q: %w", name, err)
	}
	// Record first, name index second, so the index never points at
	// nothing; losing the race for the name revokes the orphan record.
	if _, err := t.store.Create(ctx, adminNamePrefix+name, []byte(rec.ID)); err != nil {
		revoked := rec.CreatedAt
		rec.RevokedAt = &revoked
		if b, merr := json.Marshal(rec); merr == nil {
			_, _ = t.store.Put(ctx, adminRecordPrefix+rec.ID, b)
		}
		if errors.Is(err, aegis.ErrConflict) {
			return "", fmt.Errorf("create admin token %q: name taken: %w", name, err)
		}
		return "", fmt.Errorf("create admin token %q: index name: %w", name, err)
	}
	return AdminTokenPrefix + rec.ID + "_" + b32Encode(secret[:]), nil
}

// createRecord stores rec under a fresh random id, which it sets.
func (t *AdminTokens) createRecord(ctx context.Context, rec *adminRecord) error {
	return createUnderFreshID(ctx, t.store, adminRecordPrefix, rec, func(id string) { rec.ID = id })
}

// IsAdminToken reports whether s has the shape of an admin token (not
// whether it is valid). The admin API uses it to pick the verifier.
func IsAdminToken(s string) bool { return strings.HasPrefix(s, AdminTokenPrefix) }

// Verify checks a presented admin token and returns its principal. Every
// failure is ErrUnauthenticated (Reason gives the cause for the log); any
// other error means the store could not be read and the caller must fail
// closed.
func (t *AdminTokens) Verify(ctx context.Context, bearer string) (*rbac.Principal, error) {
	id, secret, ok := parseAdminToken(bearer)
	sum := sha256.Sum256(secret[:])
	if !ok {
		subtle.ConstantTimeCompare(sum[:], dummyHash[:])
		return nil, errMalformed
	}
	rec, err := t.get(ctx, id)
	if errors.Is(err, aegis.ErrNotFound) {
		subtle.ConstantTimeCompare(sum[:], dummyHash[:])
		return nil, errUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("verify admin token: %w", err)
	}
	want, err := decodeHash(rec.Hash)
	if err != nil {
		return nil, fmt.Errorf("verify admin token: %w", err)
	}
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		return nil, errWrongSecret
	}
	if rec.RevokedAt != nil {
		return nil, errRevoked
	}
	if _, err := rbac.ParseRole(string(rec.Role)); err != nil {
		// A damaged record grants nothing.
		return nil, fmt.Errorf("verify admin token: record has %w", aegis.ErrUnavailable)
	}
	t.noteUse(ctx, id)
	return &rbac.Principal{Name: rec.Name, Role: rec.Role, Apps: slices.Clone(rec.Apps)}, nil
}

// noteUse writes the token's last use, at most once per adminUsedSpacing
// per node. Best effort: a failed write only leaves an older time.
func (t *AdminTokens) noteUse(ctx context.Context, id string) {
	now := t.now()
	if v, ok := t.used.Load(id); ok && now.Sub(v.(time.Time)) < adminUsedSpacing {
		return
	}
	t.used.Store(id, now)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, _ = t.store.Put(ctx, adminUsedPrefix+id, []byte(now.UTC().Format(time.RFC3339Nano)))
}

// get reads the record for id.
func (t *AdminTokens) get(ctx context.Context, id string) (*adminRecord, error) {
	return getRecord[adminRecord](ctx, t.store, adminRecordPrefix+id, "admin token record")
}

func (t *AdminTokens) idForName(ctx context.Context, name string) (string, error) {
	return lookupID(ctx, t.store, adminNamePrefix+name)
}

// List returns every admin token, revoked ones included, sorted by name.
func (t *AdminTokens) List(ctx context.Context) ([]AdminTokenInfo, error) {
	names, err := t.store.Keys(ctx, adminNamePrefix)
	if err != nil {
		return nil, fmt.Errorf("list admin tokens: %w", err)
	}
	out := make([]AdminTokenInfo, 0, len(names))
	for _, key := range names {
		name := strings.TrimPrefix(key, adminNamePrefix)
		id, err := t.idForName(ctx, name)
		if errors.Is(err, aegis.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list admin tokens: %q: %w", name, err)
		}
		rec, err := t.get(ctx, id)
		if errors.Is(err, aegis.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list admin tokens: %q: %w", name, err)
		}
		info := AdminTokenInfo{Name: rec.Name, Role: rec.Role, Apps: rec.Apps, CreatedAt: rec.CreatedAt,
			Revoked: rec.RevokedAt != nil, RevokedAt: rec.RevokedAt}
		if b, _, err := t.store.Get(ctx, adminUsedPrefix+id); err == nil {
			if ts, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
				info.LastUsedAt = &ts
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b AdminTokenInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Revoke stops the token called name from verifying, at once on every node.
// Revoking a revoked token is not an error and keeps the first time. An
// unknown name is aegis.ErrNotFound.
func (t *AdminTokens) Revoke(ctx context.Context, name string) error {
	if err := validateAdminTokenName(name); err != nil {
		return fmt.Errorf("revoke admin token: %w", err)
	}
	id, err := t.idForName(ctx, name)
	if err != nil {
		return fmt.Errorf("revoke admin token %q: %w", name, err)
	}
	rec, err := t.get(ctx, id)
	if err != nil {
		return fmt.Errorf("revoke admin token %q: %w", name, err)
	}
	if rec.RevokedAt != nil {
		return nil
	}
	now := t.now().UTC()
	rec.RevokedAt = &now
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("revoke admin token %q: encode record: %w", name, err)
	}
	if _, err := t.store.Put(ctx, adminRecordPrefix+id, b); err != nil {
		return fmt.Errorf("revoke admin token %q: %w", name, err)
	}
	return nil
}

// validateAdminTokenName is validateName (1–64 of [A-Za-z0-9_.-]) with
// the bootstrap principal's name reserved.
func validateAdminTokenName(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	if strings.EqualFold(name, rbac.RootName) {
		return fmt.Errorf("token name %q is reserved for the admin token file: %w", name, aegis.ErrInvalidArgument)
	}
	return nil
}

// normalizeApps checks a token's app set and returns it sorted without
// duplicates.
func normalizeApps(apps []string) ([]string, error) {
	if len(apps) > rbac.MaxApps {
		return nil, fmt.Errorf("at most %d apps per token: %w", rbac.MaxApps, aegis.ErrInvalidArgument)
	}
	out := slices.Clone(apps)
	for _, a := range out {
		if err := manifest.CheckAppName(a); err != nil {
			return nil, fmt.Errorf("app %q: %w: %w", a, aegis.ErrInvalidArgument, err)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// parseAdminToken splits a presented admin token into its id (encoded: the
// store key) and its decoded secret.
func parseAdminToken(s string) (id string, secret [secretBytes]byte, ok bool) {
	p := len(AdminTokenPrefix)
	if len(s) != adminTokenLen || s[:p] != AdminTokenPrefix || s[p+idChars] != '_' {
		return "", secret, false
	}
	id = s[p : p+idChars]
	var idRaw [idBytes]byte
	if !b32Decode(idRaw[:], id) || !b32Decode(secret[:], s[p+idChars+1:]) {
		return "", secret, false
	}
	return id, secret, true
}

// VerifyID is Verify that also returns the token's id (not secret), by
// which Current finds the token again without its secret: the console
// keeps the id in a session, never the token.
func (t *AdminTokens) VerifyID(ctx context.Context, bearer string) (*rbac.Principal, string, error) {
	who, err := t.Verify(ctx, bearer)
	if err != nil {
		return nil, "", err
	}
	id, _, _ := parseAdminToken(bearer)
	return who, id, nil
}

// Current returns the principal of the admin token with id as it stands
// now: its role and apps, or ErrUnauthenticated once it is revoked or
// gone, so a session started with a token ends with it. Any other error
// means the store could not be read.
func (t *AdminTokens) Current(ctx context.Context, id string) (*rbac.Principal, error) {
	rec, err := t.get(ctx, id)
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, errUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if rec.RevokedAt != nil {
		return nil, errRevoked
	}
	if _, err := rbac.ParseRole(string(rec.Role)); err != nil {
		return nil, fmt.Errorf("admin token: record has %w", aegis.ErrUnavailable)
	}
	return &rbac.Principal{Name: rec.Name, Role: rec.Role, Apps: slices.Clone(rec.Apps)}, nil
}
