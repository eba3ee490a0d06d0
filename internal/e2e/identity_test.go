package e2e

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/oidctest"
)

const identityApp = `app: identity
functions:
  whoami:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/id/jwt/{op}", auth: [jwt], jwt: { issuer: "ISSUER", audience: e2e, algorithms: [RS256, ES256] } }
      - http: { method: POST, path: "/id/either/{op}", auth: [api-key, jwt], jwt: { issuer: "ISSUER", audience: e2e } }
      - http: { method: POST, path: "/id/hook/{op}", auth: [hmac], hmac: { secret: SECRET } }
`

// identityFixture deploys an app with a jwt route trusting a loopback
// OpenID Connect provider and an hmac route, on the shared server.
type identityFixture struct {
	in     *instance
	key    string
	p      *oidctest.Provider
	secret []byte
	name   string // of the webhook secret
}

var identitySecrets int

func newIdentityFixture(t *testing.T) *identityFixture {
	t.Helper()
	in, key := sharedServer(t)
	p := oidctest.New(t)
	// Each fixture redeploys the app with its own provider and secret:
	// secrets are never replaced, so the name is new each time.
	identitySecrets++
	name := fmt.Sprintf("hooks-%d", identitySecrets)
	text := strings.NewReplacer("ISSUER", p.Issuer, "SECRET", name).Replace(identityApp)
	deployProbe(t, in, writeManifest(t, text))
	s, err := in.admin.CreateWebhookSecret(context.Background(), "identity", name)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(s.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return &identityFixture{in: in, key: key, p: p, secret: secret, name: name}
}

func (f *identityFixture) claims(over map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": f.p.Issuer, "aud": "e2e", "sub": "user-7", "email": "u7@example.com",
		"roles": []string{"reader"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range over {
		c[k] = v
	}
	return c
}

func (f *identityFixture) token(t *testing.T, over map[string]any) string {
	t.Helper()
	return oidctest.Sign(t, f.p.Key("k1"), f.claims(over))
}

// send posts body to path with extra headers and returns status, body and
// request id.
func (f *identityFixture) send(t *testing.T, path string, body string, hdr ...string) (int, []byte, string) {
	t.Helper()
	st, out, h := call(t, f.in.gateway, "POST", path, "", body, hdr...)
	return st, out, h.Get("X-Request-Id")
}

func TestJWTIdentityReachesTheFunction(t *testing.T) {
	f := newIdentityFixture(t)
	tok := f.token(t, nil)
	st, body, _ := f.send(t, "/id/jwt/identity", "{}", "Authorization", "Bearer "+tok)
	if st != http.StatusOK {
		t.Fatalf("status %d: %s", st, body)
	}
	var id struct {
		Scheme, Subject, Issuer string
		Claims                  map[string]any
	}
	if err := json.Unmarshal(body, &id); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if id.Scheme != "jwt" || id.Subject != "user-7" || id.Issuer != f.p.Issuer ||
		id.Claims["email"] != "u7@example.com" || id.Claims["aud"] != "e2e" {
		t.Fatalf("identity = %+v", id)
	}
	// The function sees the verified claims, never the token.
	_, hdrs, _ := f.send(t, "/id/jwt/headers", "{}", "Authorization", "Bearer "+tok)
	if strings.Contains(string(hdrs), tok) || strings.Contains(string(hdrs), "Authorization") || strings.Contains(string(hdrs), strings.Split(tok, ".")[2]) {
		t.Fatalf("the function saw the token: %s", hdrs)
	}
	// A route that takes either keeps taking API keys, as api-key.
	st, body, _ = f.send(t, "/id/either/identity", "{}", "Authorization", "Bearer "+f.key)
	if st != http.StatusOK || !strings.Contains(string(body), `"scheme":"api-key"`) || !strings.Contains(string(body), `"subject":"e2e"`) {
		t.Fatalf("api key on an either route: %d %s", st, body)
	}
	st, body, _ = f.send(t, "/id/either/identity", "{}", "Authorization", "Bearer "+tok)
	if st != http.StatusOK || !strings.Contains(string(body), `"scheme":"jwt"`) {
		t.Fatalf("token on an either route: %d %s", st, body)
	}
	// A key rotated in at the issuer is picked up on first sight.
	k2 := f.p.AddKey(t, "ES256")
	st, body, _ = f.send(t, "/id/jwt/identity", "{}", "Authorization", "Bearer "+oidctest.Sign(t, k2, f.claims(nil)))
	if st != http.StatusOK {
		t.Fatalf("token signed with a rotated-in key: %d %s", st, body)
	}
}

func TestWebhookIdentityReachesTheFunction(t *testing.T) {
	f := newIdentityFixture(t)
	body := `{"event":"paid"}`
	sig := auth.SignWebhook(f.secret, time.Now(), []byte(body))
	st, out, _ := f.send(t, "/id/hook/identity", body, "Aegis-Signature", sig)
	if st != http.StatusOK || !strings.Contains(string(out), `"scheme":"hmac"`) || !strings.Contains(string(out), `"subject":"`+f.name+`"`) {
		t.Fatalf("signed webhook: %d %s", st, out)
	}
	sig = auth.SignWebhook(f.secret, time.Now().Add(-time.Second), []byte(body))
	st, out, _ = f.send(t, "/id/hook/headers", body, "Aegis-Signature", sig)
	if st != http.StatusOK || strings.Contains(string(out), "Aegis-Signature") || strings.Contains(string(out), sig) {
		t.Fatalf("the function saw the signature: %d %s", st, out)
	}
}

// TestIdentityAttacks sends each attack through the gateway: every one is
// refused with the same 401 and leaves a security log line naming why.
func TestIdentityAttacks(t *testing.T) {
	f := newIdentityFixture(t)
	good := f.token(t, nil)
	parts := strings.Split(good, ".")
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}

	der, err := x509.MarshalPKIXPublicKey(f.p.Key("k1").Public())
	if err != nil {
		t.Fatal(err)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(f.claims(nil)))
	hs.Header["kid"] = "k1"
	hsToken, err := hs.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &payload)
	payload["sub"] = "admin"
	ghost, _ := oidctest.NewKey("RS256")
	ghost.Kid = "ghost"

	hookBody := `{"event":"paid","amount":100}`
	replayed := auth.SignWebhook(f.secret, time.Now(), []byte(hookBody))
	if st, out, _ := f.send(t, "/id/hook/echo", hookBody, "Aegis-Signature", replayed); st != 200 {
		t.Fatalf("first delivery: %d %s", st, out)
	}

	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	signed := func(sig string) []string { return []string{"Aegis-Signature", sig} }
	cases := []struct {
		name, path, body string
		hdr              []string
		reason           string
	}{
		{"no credentials", "/id/jwt/echo", "{}", nil, "missing credentials"},
		{"alg none", "/id/jwt/echo", "{}", bearer(seg(map[string]any{"alg": "none", "kid": "k1"}) + "." + parts[1] + "."), auth.ReasonAlgNone},
		{"HS256 signed with the issuer's public key", "/id/jwt/echo", "{}", bearer(hsToken), auth.ReasonKeyConfusion},
		{"expired", "/id/jwt/echo", "{}", bearer(f.token(t, map[string]any{"exp": time.Now().Add(-5 * time.Minute).Unix()})), auth.ReasonExpired},
		{"wrong aud", "/id/jwt/echo", "{}", bearer(f.token(t, map[string]any{"aud": "another-app"})), auth.ReasonWrongAudience},
		{"wrong iss", "/id/jwt/echo", "{}", bearer(f.token(t, map[string]any{"iss": "https://evil.example"})), auth.ReasonWrongIssuer},
		{"unknown kid", "/id/jwt/echo", "{}", bearer(oidctest.Sign(t, ghost, f.claims(nil))), auth.ReasonUnknownKid},
		{"swapped claim with the old signature", "/id/jwt/echo", "{}", bearer(parts[0] + "." + seg(payload) + "." + parts[2]), auth.ReasonBadSignature},
		{"API key on a jwt-only route", "/id/jwt/echo", "{}", bearer(f.key), auth.ReasonMalformed},
		{"replayed webhook", "/id/hook/echo", hookBody, signed(replayed), auth.ReasonReplayed},
		{"tampered webhook body", "/id/hook/echo", `{"event":"paid","amount":100000}`, signed(auth.SignWebhook(f.secret, time.Now(), []byte(hookBody))), auth.ReasonBadSignature},
		{"stale timestamp", "/id/hook/echo", hookBody, signed(auth.SignWebhook(f.secret, time.Now().Add(-10*time.Minute), []byte(hookBody))), auth.ReasonStaleTimestamp},
		{"webhook signed with another secret", "/id/hook/echo", hookBody, signed(auth.SignWebhook([]byte("guess"), time.Now(), []byte(hookBody))), auth.ReasonBadSignature},
		{"token on a webhook route", "/id/hook/echo", hookBody, bearer(good), "missing credentials"},
	}
	var bodies []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, id := f.send(t, c.path, c.body, c.hdr...)
			if st != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (%s)", st, body)
			}
			if msg, _ := errorBody(t, body); msg != "unauthorized" {
				t.Errorf("message %q says more than unauthorized", msg)
			}
			bodies = append(bodies, strings.Replace(string(body), id, "ID", 1))
			lines := f.in.logs.Lines("authentication failed", id)
			if len(lines) != 1 {
				t.Fatalf("%d security log lines for request %s, want 1", len(lines), id)
			}
			if lines[0]["reason"] != c.reason || lines[0]["security"] != true || lines[0]["app"] != "identity" {
				t.Errorf("log line %v, want reason %q", lines[0], c.reason)
			}
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ, so they reveal why: %q vs %q", b, bodies[0])
		}
	}
	// The good token still works after all that.
	if st, out, _ := f.send(t, "/id/jwt/echo", "{}", bearer(good)...); st != 200 {
		t.Fatalf("good token: %d %s", st, out)
	}
}

// TestJWTIssuerDownFailsClosed: with no keys the route answers 503, never
// lets the request in.
func TestJWTIssuerDownFailsClosed(t *testing.T) {
	f := newIdentityFixture(t)
	tok := f.token(t, nil)
	f.p.Close()
	st, body, _ := f.send(t, "/id/jwt/echo", "{}", "Authorization", "Bearer "+tok)
	if st != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 (%s)", st, body)
	}
	errorBody(t, body)
}

// TestWebhookReplayToAnotherServer: two servers on one NATS share the
// record of accepted signatures, so a webhook captured on its way to one
// cannot be replayed to the other.
func TestWebhookReplayToAnotherServer(t *testing.T) {
	f := newIdentityFixture(t)
	second := startServerWith(t, t.TempDir(), func(c *server.Config) {
		shareNATS(c, f.in)
	})
	defer second.close(t)
	body := `{"event":"paid","amount":100}`
	sig := auth.SignWebhook(f.secret, time.Now(), []byte(body))
	if st, out, _ := f.send(t, "/id/hook/echo", body, "Aegis-Signature", sig); st != http.StatusOK {
		t.Fatalf("first delivery: %d %s", st, out)
	}
	st, out, hdr := call(t, second.gateway, "POST", "/id/hook/echo", "", body, "Aegis-Signature", sig)
	if st != http.StatusUnauthorized {
		t.Fatalf("replay to the second server: %d %s, want 401", st, out)
	}
	id := hdr.Get("X-Request-Id")
	if l := second.logs.Lines(id, `"reason":"replayed"`, `"security":true`); len(l) != 1 {
		t.Errorf("no security line with reason replayed on the second server: %v", l)
	}
	// A fresh signature is a new delivery, on either server.
	fresh := auth.SignWebhook(f.secret, time.Now().Add(time.Second), []byte(body))
	if st, out, _ := call(t, second.gateway, "POST", "/id/hook/echo", "", body, "Aegis-Signature", fresh); st != http.StatusOK {
		t.Fatalf("fresh delivery to the second server: %d %s", st, out)
	}
}

// TestAsyncResultOfAJWTCall: the bearer of a JWT reads back the result of
// an asynchronous call with any valid token of the same subject; another
// subject, an API key and no credentials do not.
func TestAsyncResultOfAJWTCall(t *testing.T) {
	f := newIdentityFixture(t)
	id, _ := asyncCall(t, f.in.gateway, "POST", "/id/jwt/echo", "", "later", "Authorization", "Bearer "+f.token(t, nil))
	result := func(hdr ...string) (int, string) {
		st, body, _ := call(t, f.in.gateway, "GET", "/_aegis/invocations/"+id, "", nil, hdr...)
		var res struct {
			Status   string
			Response struct{ Body []byte }
		}
		_ = json.Unmarshal(body, &res)
		if st == http.StatusOK && res.Status == "done" {
			return st, string(res.Response.Body)
		}
		return st, res.Status
	}
	// A new token of the same subject: tokens expire, results outlive them.
	same := func() []string {
		return []string{"Authorization", "Bearer " + f.token(t, map[string]any{"iat": time.Now().Unix()})}
	}
	eventually(t, 10*time.Second, "the async result", func() bool {
		st, got := result(same()...)
		if st != http.StatusOK {
			t.Fatalf("owner reading the result: %d", st)
		}
		return got == "later"
	})
	if st, _ := result("Authorization", "Bearer "+f.token(t, map[string]any{"sub": "user-8"})); st != http.StatusNotFound {
		t.Errorf("another subject read the result: %d", st)
	}
	if st, _ := result("Authorization", "Bearer "+f.key); st != http.StatusNotFound {
		t.Errorf("an API key read a JWT caller's result: %d", st)
	}
	if st, _ := result(); st != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", st)
	}
	if st, _ := result("Authorization", "Bearer "+f.token(t, map[string]any{"aud": "another-app"})); st != http.StatusUnauthorized {
		t.Errorf("a token for another audience: %d", st)
	}
}
