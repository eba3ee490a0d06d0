package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/aegis-platform/aegis"
)

// MaxJWTLen caps a bearer JWT. ID and access tokens are one or two KiB;
// the cap keeps an attacker's megabyte header out of base64 and JSON.
const MaxJWTLen = 8 << 10

// JWTConfig is what a route accepts: tokens from Issuer for Audience,
// signed with one of Algorithms (all asymmetric, checked by the manifest),
// with Skew of clock difference tolerated on exp, nbf and iat.
type JWTConfig struct {
	Issuer     string
	Audience   string
	Algorithms []string
	Skew       time.Duration
}

// JWTIdentity is what a verified token says about its bearer. Only a token
// whose signature, issuer, audience and validity period all check out
// produces one.
type JWTIdentity struct {
	Subject string
	Issuer  string
	// Claims holds every claim of the token, as JSON decodes them.
	Claims map[string]any
}

// KeySource finds the verification key kid of an issuer. *JWKS is the
// production one.
type KeySource interface {
	Key(ctx context.Context, issuer, kid string) (*PublicKey, error)
}

// JWTVerifier checks bearer JWTs against the keys of their route's issuer.
type JWTVerifier struct {
	keys KeySource
	now  func() time.Time
}

// NewJWTVerifier returns a verifier that takes keys from keys.
func NewJWTVerifier(keys KeySource) *JWTVerifier {
	return &JWTVerifier{keys: keys, now: time.Now}
}

// jwtHeader is the JOSE header as far as the checks before the signature
// need it.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// LooksLikeJWT reports whether a bearer token has the shape of a compact
// JWS (three dot-separated parts), which tells a JWT from an API key.
func LooksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2
}

// Verify checks token for a route configured by cfg. Every failure is
// ErrUnauthenticated with a reason for the log ("alg none", "key
// confusion", "expired", "wrong audience", ...); an error that is not
// means the issuer's keys could not be loaded, and the caller must fail
// closed (503).
//
// The algorithm is checked against the route's list before any key is
// looked up, and the key found must be of the algorithm's type: an HS256
// token is refused outright, so the issuer's public key can never be used
// as an HMAC secret.
func (v *JWTVerifier) Verify(ctx context.Context, token string, cfg JWTConfig) (*JWTIdentity, error) {
	if len(token) > MaxJWTLen {
		return nil, errTokenTooLong
	}
	h, err := parseJWTHeader(token)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.EqualFold(h.Alg, "none"):
		return nil, errAlgNone
	case len(h.Alg) >= 2 && strings.EqualFold(h.Alg[:2], "HS"):
		return nil, errKeyConfusion
	case !slices.Contains(cfg.Algorithms, h.Alg):
		return nil, errAlgNotAllowed
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Skew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
	)
	claims := jwt.MapClaims{}
	_, err = p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t, cfg.Issuer)
	})
	if err != nil {
		return nil, jwtFailure(err)
	}
	id := &JWTIdentity{Claims: claims}
	id.Subject, _ = claims["sub"].(string)
	id.Issuer, _ = claims["iss"].(string)
	return id, nil
}

// key is the parser's key function: the issuer's key named by kid, if its
// type fits the token's algorithm.
func (v *JWTVerifier) key(ctx context.Context, t *jwt.Token, issuer string) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	if _, isString := t.Header["kid"].(string); t.Header["kid"] != nil && !isString {
		return nil, errMalformed
	}
	k, err := v.keys.Key(ctx, issuer, kid)
	if err != nil {
		return nil, err
	}
	if (k.Alg != "" && k.Alg != alg) || !keyFits(alg, k) {
		return nil, errKeyConfusion
	}
	return k.Key, nil
}

// keyFits reports whether k is the kind of key alg verifies with.
func keyFits(alg string, k *PublicKey) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok := k.Key.(*rsa.PublicKey)
		return ok
	case "ES256", "ES384", "ES512":
		ec, ok := k.Key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		want := map[string]int{"ES256": 256, "ES384": 384, "ES512": 521}[alg]
		return ec.Curve.Params().BitSize == want
	case "EdDSA":
		_, ok := k.Key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// parseJWTHeader decodes the JOSE header of a compact JWS.
func parseJWTHeader(token string) (*jwtHeader, error) {
	head, _, ok := strings.Cut(token, ".")
	if !ok || !LooksLikeJWT(token) {
		return nil, errMalformed
	}
	b, err := b64(head)
	if err != nil {
		return nil, errMalformed
	}
	var h jwtHeader
	if err := json.Unmarshal(b, &h); err != nil || h.Alg == "" {
		return nil, errMalformed
	}
	// RFC 7515 §4.1.11: extensions marked critical must be understood, and
	// we understand none.
	if h.Crit != nil {
		return nil, errMalformed
	}
	return &h, nil
}

// jwtFailure maps the parser's error to one of ours.
func jwtFailure(err error) error {
	var ve *verifyError
	switch {
	case errors.As(err, &ve):
		return ve
	case errors.Is(err, aegis.ErrUnavailable):
		return fmt.Errorf("verify jwt: %w", err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return errBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errWrongAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errMissingClaim
	}
	return errMalformed
}
