package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/oidctest"
)

const testAudience = "shop-api"

// jwtFixture is a verifier wired to a live loopback provider and a clock
// shared by the verifier and the key cache.
type jwtFixture struct {
	p    *oidctest.Provider
	v    *JWTVerifier
	jwks *JWKS
	clk  *fakeClock
	cfg  JWTConfig
}

func newJWTFixture(t *testing.T) *jwtFixture {
	t.Helper()
	p := oidctest.New(t)
	clk := &fakeClock{t: time.Now().Truncate(time.Second)}
	jwks := NewJWKS(nil)
	jwks.now = clk.Now
	v := NewJWTVerifier(jwks)
	v.now = clk.Now
	return &jwtFixture{p: p, v: v, jwks: jwks, clk: clk, cfg: JWTConfig{
		Issuer: p.Issuer, Audience: testAudience, Algorithms: []string{"RS256", "ES256", "EdDSA"}, Skew: time.Minute,
	}}
}

// claims are valid claims for the fixture's route, with overrides.
func (f *jwtFixture) claims(over map[string]any) map[string]any {
	now := f.clk.Now()
	c := map[string]any{
		"iss": f.p.Issuer, "aud": testAudience, "sub": "user-1", "email": "u1@example.com",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (f *jwtFixture) sign(t *testing.T, kid string, over map[string]any) string {
	t.Helper()
	k := f.p.Key(kid)
	if k == nil {
		t.Fatalf("no key %s", kid)
	}
	return oidctest.Sign(t, k, f.claims(over))
}

func wantJWTRefused(t *testing.T, id *JWTIdentity, err error, reason string) {
	t.Helper()
	if id != nil {
		t.Fatalf("got identity %+v, want none", id)
	}
	wantUnauthenticated(t, nil, err, reason)
}

// encodeSegment is one base64url part of a compact JWS.
func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestJWTAccepts(t *testing.T) {
	f := newJWTFixture(t)
	es := f.p.AddKey(t, "ES256")
	ed := f.p.AddKey(t, "EdDSA")
	ctx := context.Background()
	for _, kid := range []string{"k1", es.Kid, ed.Kid} {
		tok := f.sign(t, kid, map[string]any{"aud": []string{"other", testAudience}, "nbf": f.clk.Now().Add(30 * time.Second).Unix()})
		id, err := f.v.Verify(ctx, tok, f.cfg)
		if err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
		if id.Subject != "user-1" || id.Issuer != f.p.Issuer || id.Claims["email"] != "u1@example.com" {
			t.Fatalf("%s: identity %+v", kid, id)
		}
	}
	// Within the skew: expired 30 s ago, issued 30 s in the future.
	tok := f.sign(t, "k1", map[string]any{"exp": f.clk.Now().Add(-30 * time.Second).Unix(), "iat": f.clk.Now().Add(30 * time.Second).Unix()})
	if _, err := f.v.Verify(ctx, tok, f.cfg); err != nil {
		t.Fatalf("token within skew: %v", err)
	}
	if got := f.p.Fetches(); got != 1 {
		t.Errorf("JWKS fetched %d times, want once for all of these", got)
	}
}

// TestJWTAttacks is the table of tokens an attacker might try. Each must be
// refused with its own reason, for the security log.
func TestJWTAttacks(t *testing.T) {
	f := newJWTFixture(t)
	ec := f.p.AddKey(t, "ES256")
	ctx := context.Background()
	now := f.clk.Now()
	rsaKey := f.p.Key("k1")
	good := f.sign(t, "k1", nil)
	if _, err := f.v.Verify(ctx, good, f.cfg); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	// HS256 "signed" with the issuer's public key, as a confused verifier
	// would check it.
	der, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(f.claims(nil)))
	hs.Header["kid"] = "k1"
	hsToken, err := hs.SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}

	// The same claims with sub swapped, under the old signature.
	var payload map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &payload)
	payload["sub"] = "admin"
	swapped := parts[0] + "." + encodeSegment(t, payload) + "." + parts[2]

	ghost, err := oidctest.NewKey("RS256")
	if err != nil {
		t.Fatal(err)
	}
	ghost.Kid = "ghost"
	// An RS256 header pointing at the EC key: the key's type must fit.
	confusedKid := encodeSegment(t, map[string]any{"alg": "RS256", "kid": ec.Kid, "typ": "JWT"}) + "." + parts[1] + "." + parts[2]

	cases := []struct {
		name, token, reason string
	}{
		{"alg none", encodeSegment(t, map[string]any{"alg": "none", "kid": "k1"}) + "." + parts[1] + ".", ReasonAlgNone},
		{"alg NoNe", encodeSegment(t, map[string]any{"alg": "NoNe"}) + "." + parts[1] + "." + parts[2], ReasonAlgNone},
		{"HS256 with the public key", hsToken, ReasonKeyConfusion},
		{"RS256 header on an EC key", confusedKid, ReasonKeyConfusion},
		{"algorithm not allowed", oidctest.Sign(t, ec, f.claims(nil)), ReasonAlgNotAllowed},
		{"expired", f.sign(t, "k1", map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), ReasonExpired},
		{"no exp", f.sign(t, "k1", map[string]any{"exp": nil}), ReasonMissingClaim},
		{"not yet valid", f.sign(t, "k1", map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}), ReasonNotYetValid},
		{"issued in the future", f.sign(t, "k1", map[string]any{"iat": now.Add(2 * time.Minute).Unix()}), ReasonNotYetValid},
		{"wrong aud", f.sign(t, "k1", map[string]any{"aud": "other-app"}), ReasonWrongAudience},
		{"no aud", f.sign(t, "k1", map[string]any{"aud": nil}), ReasonMissingClaim},
		{"wrong iss", f.sign(t, "k1", map[string]any{"iss": "https://evil.example"}), ReasonWrongIssuer},
		{"unknown kid", oidctest.Sign(t, ghost, f.claims(nil)), ReasonUnknownKid},
		{"swapped claim, old signature", swapped, ReasonBadSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(f.sign(t, "k1", map[string]any{"sub": "x"}), ".")[2], ReasonBadSignature},
		{"no signature", parts[0] + "." + parts[1] + ".", ReasonBadSignature},
		{"crit header", encodeSegment(t, map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"b64"}}) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"kid not a string", encodeSegment(t, map[string]any{"alg": "RS256", "kid": 7}) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], ReasonMalformed},
		{"garbage", "a.b.c", ReasonMalformed},
		{"too long", good + strings.Repeat("A", MaxJWTLen), ReasonTokenTooLong},
	}
	f.cfg.Algorithms = []string{"RS256"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := f.v.Verify(ctx, c.token, f.cfg)
			wantJWTRefused(t, id, err, c.reason)
		})
	}
}

// TestJWTKeyRotation: a new kid is fetched when first seen; a removed one
// stops verifying once the cached set expires.
func TestJWTKeyRotation(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	old := f.sign(t, "k1", map[string]any{"exp": f.clk.Now().Add(24 * time.Hour).Unix()})
	if _, err := f.v.Verify(ctx, old, f.cfg); err != nil {
		t.Fatal(err)
	}
	k2 := f.p.AddKey(t, "RS256")
	f.p.RemoveKey("k1")
	if _, err := f.v.Verify(ctx, f.sign(t, k2.Kid, nil), f.cfg); err != nil {
		t.Fatalf("token with the new kid: %v", err)
	}
	if got := f.p.Fetches(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (the new kid forced one)", got)
	}
	// The refreshed set no longer has k1.
	id, err := f.v.Verify(ctx, old, f.cfg)
	wantJWTRefused(t, id, err, ReasonUnknownKid)
}

func TestJWTRemovedKeyExpiresWithTheCache(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	old := f.sign(t, "k1", map[string]any{"exp": f.clk.Now().Add(24 * time.Hour).Unix()})
	if _, err := f.v.Verify(ctx, old, f.cfg); err != nil {
		t.Fatal(err)
	}
	f.p.AddKey(t, "RS256")
	f.p.RemoveKey("k1")
	f.clk.Advance(JWKSCacheTTL - time.Second)
	if _, err := f.v.Verify(ctx, old, f.cfg); err != nil {
		t.Fatalf("within the TTL the cached key still verifies: %v", err)
	}
	f.clk.Advance(2 * time.Second)
	id, err := f.v.Verify(ctx, old, f.cfg)
	wantJWTRefused(t, id, err, ReasonUnknownKid)
}

// TestJWTUnknownKidRefreshIsRateLimited: made-up kids cost the issuer one
// JWKS request per JWKSRefreshInterval, however many arrive.
func TestJWTUnknownKidRefreshIsRateLimited(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.sign(t, "k1", nil), f.cfg); err != nil {
		t.Fatal(err)
	}
	ghost, _ := oidctest.NewKey("RS256")
	for i := range 20 {
		ghost.Kid = "ghost-" + string(rune('a'+i))
		id, err := f.v.Verify(ctx, oidctest.Sign(t, ghost, f.claims(nil)), f.cfg)
		wantJWTRefused(t, id, err, ReasonUnknownKid)
	}
	if got := f.p.Fetches(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (the first and one refresh)", got)
	}
	// A real new key published now waits for the interval...
	k2 := f.p.AddKey(t, "RS256")
	tok := f.sign(t, k2.Kid, map[string]any{"exp": f.clk.Now().Add(time.Hour).Unix()})
	id, err := f.v.Verify(ctx, tok, f.cfg)
	wantJWTRefused(t, id, err, ReasonUnknownKid)
	// ...and is found once it has passed.
	f.clk.Advance(JWKSRefreshInterval)
	if _, err := f.v.Verify(ctx, tok, f.cfg); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if got := f.p.Fetches(); got != 3 {
		t.Fatalf("fetches = %d, want 3", got)
	}
}

// TestJWTFailsClosed: when the keys cannot be loaded the answer is
// unavailable (503), never a verified token and never "bad token".
func TestJWTFailsClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("issuer down", func(t *testing.T) {
		f := newJWTFixture(t)
		tok := f.sign(t, "k1", nil)
		f.p.Close()
		_, err := f.v.Verify(ctx, tok, f.cfg)
		if err == nil || errors.Is(err, ErrUnauthenticated) || !errors.Is(err, aegis.ErrUnavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	})
	bad := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"discovery names another issuer", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"issuer":"https://evil.example","jwks_uri":"http://` + r.Host + `/jwks"}`))
		}},
		{"jwks_uri not https", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"issuer":"http://` + r.Host + `","jwks_uri":"http://keys.example.com/jwks"}`))
		}},
		{"oversized document", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("x", MaxJWKSBytes) + `"}`))
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		}},
		{"not json", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			key, _ := oidctest.NewKey("RS256")
			key.Kid = "k1"
			v := NewJWTVerifier(NewJWKS(nil))
			tok := oidctest.Sign(t, key, map[string]any{"iss": srv.URL, "aud": "a", "exp": time.Now().Add(time.Hour).Unix()})
			_, err := v.Verify(ctx, tok, JWTConfig{Issuer: srv.URL, Audience: "a", Algorithms: []string{"RS256"}})
			if err == nil || errors.Is(err, ErrUnauthenticated) || !errors.Is(err, aegis.ErrUnavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
		})
	}
}

// TestJWKSRetryAfterFailureIsSpaced: an issuer that is down is not asked
// again by every request.
func TestJWKSRetryAfterFailureIsSpaced(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	clk := &fakeClock{t: time.Now()}
	j := NewJWKS(nil)
	j.now = clk.Now
	for range 5 {
		if _, err := j.Key(context.Background(), srv.URL, "k1"); !errors.Is(err, aegis.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if calls != 1 {
		t.Fatalf("issuer asked %d times, want 1", calls)
	}
	clk.Advance(jwksRetryInterval)
	_, _ = j.Key(context.Background(), srv.URL, "k1")
	if calls != 2 {
		t.Fatalf("issuer asked %d times after the retry interval, want 2", calls)
	}
}

func TestParseJWKS(t *testing.T) {
	rs, _ := oidctest.NewKey("RS256")
	rs.Kid = "rs"
	es, _ := oidctest.NewKey("ES256")
	es.Kid = "es"
	ed, _ := oidctest.NewKey("EdDSA")
	ed.Kid = "ed"
	dup, _ := oidctest.NewKey("EdDSA")
	dup.Kid = "dup"
	enc := oidctest.JWK(rs)
	enc["kid"], enc["use"] = "enc-key", "enc"
	offCurve := oidctest.JWK(es)
	offCurve["kid"], offCurve["y"] = "off", offCurve["x"]
	set := map[string]any{"keys": []any{
		oidctest.JWK(rs), oidctest.JWK(es), oidctest.JWK(ed), oidctest.JWK(dup), oidctest.JWK(dup),
		enc, offCurve,
		map[string]string{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
		map[string]string{"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"},
		"not an object",
	}}
	b, _ := json.Marshal(set)
	keys, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys["rs"] == nil || keys["es"] == nil || keys["ed"] == nil {
		t.Fatalf("keys = %v, want rs, es and ed only", keys)
	}
	for _, in := range []string{``, `[]`, `{}`, `{"keys":3}`} {
		if _, err := ParseJWKS([]byte(in)); err == nil {
			t.Errorf("ParseJWKS(%q) succeeded", in)
		}
	}
}

// FuzzVerifyJWT: arbitrary tokens never panic and never verify against a
// fixed key set (forging a signature is not something a fuzzer does).
func FuzzVerifyJWT(f *testing.F) {
	key, err := oidctest.NewKey("RS256")
	if err != nil {
		f.Fatal(err)
	}
	key.Kid = "k1"
	pub := &PublicKey{Kid: "k1", Alg: "RS256", Key: key.Public()}
	v := NewJWTVerifier(staticKeys{"k1": pub})
	cfg := JWTConfig{Issuer: "https://id.example", Audience: "a", Algorithms: []string{"RS256", "ES256", "EdDSA"}, Skew: time.Minute}
	good := oidctest.Sign(f, key, map[string]any{"iss": cfg.Issuer, "aud": "a", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.Verify(context.Background(), good, cfg); err != nil {
		f.Fatalf("seed token does not verify: %v", err)
	}
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".e30." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
	f.Add("...")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good {
			return
		}
		id, err := v.Verify(context.Background(), tok, cfg)
		if err == nil {
			// Only a token with the good token's signed content verifies.
			if p := strings.Split(tok, "."); len(p) != 3 || p[0]+"."+p[1] != parts[0]+"."+parts[1] {
				t.Fatalf("forged token verified: %q -> %+v", tok, id)
			}
			return
		}
		if !errors.Is(err, ErrUnauthenticated) || Reason(err) == "" {
			t.Fatalf("err = %v, want ErrUnauthenticated with a reason", err)
		}
	})
}

// FuzzParseJWKS: any document parses or fails without panicking, and every
// key it yields is usable.
func FuzzParseJWKS(f *testing.F) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		k, _ := oidctest.NewKey(alg)
		k.Kid = alg
		b, _ := json.Marshal(map[string]any{"keys": []any{oidctest.JWK(k)}})
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-521","x":"","y":""},{"kty":"RSA","n":"","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if k == nil || k.Key == nil || k.Kid != kid {
				t.Fatalf("key %q = %+v", kid, k)
			}
		}
	})
}

type staticKeys map[string]*PublicKey

func (s staticKeys) Key(_ context.Context, _, kid string) (*PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKid
}
