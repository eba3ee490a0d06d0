package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/rbac"
)

func newTestAdminTokens(t testing.TB) (*AdminTokens, *memStore, *fakeClock) {
	t.Helper()
	s := newMemStore()
	clk := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	at := NewAdminTokens(s)
	at.now = clk.Now
	return at, s, clk
}

func TestAdminTokenCreateVerify(t *testing.T) {
	at, store, _ := newTestAdminTokens(t)
	ctx := context.Background()
	tok, err := at.Create(ctx, "ci", rbac.RoleDeployer, []string{"shop", "blog", "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "aegisadm_") || len(tok) != adminTokenLen || !IsAdminToken(tok) {
		t.Fatalf("token %q has not the admin token shape", tok)
	}
	p, err := at.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "ci" || p.Role != rbac.RoleDeployer || !slices.Equal(p.Apps, []string{"blog", "shop"}) {
		t.Errorf("principal %+v", p)
	}
	// Only a hash is stored: the secret part appears nowhere in the store.
	secret := tok[strings.LastIndexByte(tok, '_')+1:]
	for k, v := range store.Contents() {
		if strings.Contains(string(v), secret) || strings.Contains(k, secret) {
			t.Errorf("store entry %s holds the secret", k)
		}
	}
}

func TestAdminTokenVerifyFailures(t *testing.T) {
	at, _, _ := newTestAdminTokens(t)
	ctx := context.Background()
	tok, err := at.Create(ctx, "ops", rbac.RoleOperator, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A character inside the secret (the last one also carries padding
	// bits, which must stay zero): still well-formed, but the wrong secret.
	i := len(tok) - 10
	wrong := tok[:i] + map[bool]string{true: "b", false: "a"}[tok[i] == 'a'] + tok[i+1:]
	apiKeyShaped := keyPrefix + tok[len(AdminTokenPrefix):]
	unknownID := AdminTokenPrefix + strings.Repeat("a", idChars) + tok[len(AdminTokenPrefix)+idChars:]
	for _, c := range []struct{ in, reason string }{
		{"", ReasonMalformed},
		{"aegisadm_", ReasonMalformed},
		{apiKeyShaped, ReasonMalformed},
		{strings.ToUpper(tok), ReasonMalformed},
		{unknownID, ReasonUnknownKey},
		{wrong, ReasonWrongSecret},
	} {
		p, err := at.Verify(ctx, c.in)
		if p != nil || !errors.Is(err, ErrUnauthenticated) || Reason(err) != c.reason {
			t.Errorf("Verify(%q) = %v, %v (reason %q); want reason %q", c.in, p, err, Reason(err), c.reason)
		}
	}

	if err := at.Revoke(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if p, err := at.Verify(ctx, tok); p != nil || Reason(err) != ReasonRevoked {
		t.Errorf("revoked token: %v, %v", p, err)
	}
	if err := at.Revoke(ctx, "ops"); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := at.Revoke(ctx, "nobody"); !errors.Is(err, aegis.ErrNotFound) {
		t.Errorf("revoking an unknown token: %v", err)
	}
}

func TestAdminTokenStoreDownFailsClosed(t *testing.T) {
	at, store, _ := newTestAdminTokens(t)
	tok, err := at.Create(context.Background(), "x", rbac.RoleViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	store.SetFail(errors.New("nats down"))
	p, err := at.Verify(context.Background(), tok)
	if p != nil || err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Errorf("store down: %v, %v; want an error that is not a 401", p, err)
	}
}

func TestAdminTokenCreateValidates(t *testing.T) {
	at, _, _ := newTestAdminTokens(t)
	ctx := context.Background()
	many := make([]string, rbac.MaxApps+1)
	for i := range many {
		many[i] = "app" + strings.Repeat("x", i%5) + string(rune('a'+i%26))
	}
	for _, c := range []struct {
		name string
		role rbac.Role
		apps []string
	}{
		{"", rbac.RoleViewer, nil},
		{strings.Repeat("n", 65), rbac.RoleViewer, nil},
		{"has space", rbac.RoleViewer, nil},
		{"root", rbac.RoleAdmin, nil},
		{"ROOT", rbac.RoleViewer, nil},
		{"ok", "superuser", nil},
		{"ok", "", nil},
		{"ok", rbac.RoleViewer, []string{"Bad_App"}},
		{"ok", rbac.RoleViewer, many},
	} {
		if _, err := at.Create(ctx, c.name, c.role, c.apps); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("Create(%q, %q, %d apps) = %v, want ErrInvalidArgument", c.name, c.role, len(c.apps), err)
		}
	}
	if _, err := at.Create(ctx, strings.Repeat("n", 64), rbac.RoleViewer, nil); err != nil {
		t.Errorf("64-character name refused: %v", err)
	}
	if _, err := at.Create(ctx, "dup", rbac.RoleViewer, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := at.Create(ctx, "dup", rbac.RoleAdmin, nil); !errors.Is(err, aegis.ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
}

func TestAdminTokenList(t *testing.T) {
	at, _, clk := newTestAdminTokens(t)
	ctx := context.Background()
	tok, err := at.Create(ctx, "b-viewer", rbac.RoleViewer, []string{"shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.Create(ctx, "a-admin", rbac.RoleAdmin, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := at.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := at.Revoke(ctx, "a-admin"); err != nil {
		t.Fatal(err)
	}
	list, err := at.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a-admin" || list[1].Name != "b-viewer" {
		t.Fatalf("list %+v", list)
	}
	if !list[0].Revoked || list[0].RevokedAt == nil || list[0].Role != rbac.RoleAdmin {
		t.Errorf("revoked entry %+v", list[0])
	}
	if list[1].Revoked || list[1].LastUsedAt == nil || !slices.Equal(list[1].Apps, []string{"shop"}) {
		t.Errorf("used entry %+v", list[1])
	}
}

// FuzzVerifyAdminToken: whatever a caller puts after "Bearer " on the
// admin API, Verify refuses it as unauthenticated with a reason, and never
// panics; only the real token passes.
func FuzzVerifyAdminToken(f *testing.F) {
	at, _, _ := newTestAdminTokens(f)
	ctx := context.Background()
	real, err := at.Create(ctx, "ci", rbac.RoleViewer, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"", "aegisadm_", "aegisadm__", real[:len(real)-1], real + "a", strings.ToUpper(real),
		"aegisadm_" + strings.Repeat("a", 16) + "_" + strings.Repeat("a", 52),
		"aegis_" + strings.Repeat("7", 16) + "_" + strings.Repeat("7", 52),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, bearer string) {
		if bearer == real {
			t.Skip()
		}
		p, err := at.Verify(ctx, bearer)
		if p != nil || !errors.Is(err, ErrUnauthenticated) || Reason(err) == "" {
			t.Fatalf("Verify(%q) = %v, %v", bearer, p, err)
		}
	})
}

func TestAdminTokenCurrentEndsWithRevocation(t *testing.T) {
	at, _, _ := newTestAdminTokens(t)
	ctx := context.Background()
	tok, err := at.Create(ctx, "console", rbac.RoleOperator, []string{"shop"})
	if err != nil {
		t.Fatal(err)
	}
	who, id, err := at.VerifyID(ctx, tok)
	if err != nil || who.Name != "console" || id == "" {
		t.Fatalf("VerifyID: %+v %q %v", who, id, err)
	}
	if strings.Contains(id, "_") || !strings.HasPrefix(tok, AdminTokenPrefix+id+"_") {
		t.Fatalf("id %q is not the token's id part", id)
	}
	cur, err := at.Current(ctx, id)
	if err != nil || cur.Role != rbac.RoleOperator || !slices.Equal(cur.Apps, []string{"shop"}) {
		t.Fatalf("Current: %+v %v", cur, err)
	}
	if err := at.Revoke(ctx, "console"); err != nil {
		t.Fatal(err)
	}
	if _, err := at.Current(ctx, id); !errors.Is(err, ErrUnauthenticated) || Reason(err) != ReasonRevoked {
		t.Fatalf("Current after revoke: %v", err)
	}
	if _, err := at.Current(ctx, "AAAAAAAAAAAAAAAA"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Current of an unknown id: %v", err)
	}
	if _, _, err := at.VerifyID(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("VerifyID after revoke: %v", err)
	}
}
