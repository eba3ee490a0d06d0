package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegis-platform/aegis"
)

// JWKS defaults. A key set is trusted for JWKSCacheTTL; a token whose kid
// is unknown may force a refresh at most once per JWKSRefreshInterval per
// issuer, so a stream of made-up kids costs the issuer one request every
// 30 s, not one per token.
const (
	JWKSCacheTTL        = 10 * time.Minute
	JWKSRefreshInterval = 30 * time.Second
	// jwksRetryInterval spaces fetches after a failure, so an issuer that is
	// down is not asked again by every request that arrives meanwhile.
	jwksRetryInterval = 5 * time.Second
	jwksFetchTimeout  = 5 * time.Second
	// MaxJWKSBytes caps a discovery document or a key set. Real ones are a
	// few KiB.
	MaxJWKSBytes = 256 << 10
	// maxJWKSKeys caps the keys kept from one set.
	maxJWKSKeys = 64
)

// PublicKey is one verification key from a JWKS: an *rsa.PublicKey, an
// *ecdsa.PublicKey or an ed25519.PublicKey, with what the set says about it.
type PublicKey struct {
	Kid string
	// Alg is the JWK's "alg", empty when the set does not pin one.
	Alg string
	Key crypto.PublicKey
}

// keySet is what one fetch produced. Never modified once built.
type keySet struct {
	keys    map[string]*PublicKey // by kid
	fetched time.Time
}

// issuerKeys is the cache of one issuer.
type issuerKeys struct {
	set atomic.Pointer[keySet]
	// fetchMu serializes fetches, so concurrent requests that all miss
	// wait for one fetch instead of each making their own.
	fetchMu     sync.Mutex
	lastForced  time.Time // last refresh caused by an unknown kid
	lastFailure time.Time
	lastErr     error
}

// JWKS finds, fetches and caches the signing keys of OpenID Connect issuers:
// {issuer}/.well-known/openid-configuration names the jwks_uri, whose keys
// are kept for JWKSCacheTTL. The issuer always comes from a manifest, never
// from a token, so a caller cannot make the server fetch from a URL of its
// choosing. It is ours rather than keyfunc/jwkset's or go-oidc's because
// neither keeps its refusals, expiry and refresh limits (RATIONALE.md).
type JWKS struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

// NewJWKS returns an empty cache that fetches with client, or with a client
// of its own (5 s timeout, no redirects) when client is nil.
func NewJWKS(client *http.Client) *JWKS {
	if client == nil {
		client = &http.Client{
			Timeout: jwksFetchTimeout,
			// A redirect could take the fetch from https to anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &JWKS{client: client, now: time.Now, issuers: map[string]*issuerKeys{}}
}

// errKeysUnavailable is returned when an issuer's keys cannot be loaded: the
// caller must fail closed with 503, not blame the token.
var errKeysUnavailable = fmt.Errorf("issuer keys: %w", aegis.ErrUnavailable)

// Key returns the key called kid of issuer. An empty kid matches only when
// the set holds exactly one key. A kid that the cached set lacks forces a
// refresh, at most once per JWKSRefreshInterval; one that is still unknown
// is ErrUnauthenticated with reason "unknown kid". When no keys can be
// loaded the error wraps aegis.ErrUnavailable.
func (j *JWKS) Key(ctx context.Context, issuer, kid string) (*PublicKey, error) {
	ik := j.issuer(issuer)
	now := j.now()
	if set := ik.set.Load(); set != nil && j.fresh(set, now) {
		if k, ok := set.find(kid); ok {
			return k, nil
		}
	}
	ik.fetchMu.Lock()
	defer ik.fetchMu.Unlock()
	now = j.now()
	set := ik.set.Load()
	if set != nil && j.fresh(set, now) {
		if k, ok := set.find(kid); ok {
			return k, nil // fetched while this call waited
		}
		if now.Sub(ik.lastForced) < JWKSRefreshInterval {
			return nil, errUnknownKid
		}
		ik.lastForced = now
	}
	// With a fresh set in hand, a failed refresh leaves the kid unknown
	// (401); with none, nothing can be verified (503).
	haveFresh := set != nil && j.fresh(set, now)
	if !ik.lastFailure.IsZero() && now.Sub(ik.lastFailure) < jwksRetryInterval {
		if haveFresh {
			return nil, errUnknownKid
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, ik.lastErr)
	}
	fresh, err := j.fetch(ctx, issuer)
	if err != nil {
		ik.lastFailure, ik.lastErr = now, err
		if haveFresh {
			return nil, errUnknownKid
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	ik.lastFailure, ik.lastErr = time.Time{}, nil
	fresh.fetched = now
	ik.set.Store(fresh)
	if k, ok := fresh.find(kid); ok {
		return k, nil
	}
	return nil, errUnknownKid
}

func (j *JWKS) fresh(s *keySet, now time.Time) bool {
	age := now.Sub(s.fetched)
	return age >= 0 && age < JWKSCacheTTL
}

func (s *keySet) find(kid string) (*PublicKey, bool) {
	if kid == "" {
		if len(s.keys) != 1 {
			return nil, false
		}
		for _, k := range s.keys {
			return k, true
		}
	}
	k, ok := s.keys[kid]
	return k, ok
}

// issuer returns the cache entry of issuer. Issuers come from deployed
// manifests, so the map is bounded by what admins configured.
func (j *JWKS) issuer(issuer string) *issuerKeys {
	j.mu.Lock()
	defer j.mu.Unlock()
	ik, ok := j.issuers[issuer]
	if !ok {
		ik = &issuerKeys{}
		j.issuers[issuer] = ik
	}
	return ik
}

// fetch runs discovery and loads the key set of issuer.
func (j *JWKS) fetch(ctx context.Context, issuer string) (*keySet, error) {
	if err := checkFetchURL(issuer); err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	discovery := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	b, err := j.get(ctx, discovery)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("discover %s: decode: %w", issuer, err)
	}
	// OpenID Connect Discovery 1.0 §4.3: the document must name the very
	// issuer it was fetched for.
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("discover %s: document names issuer %q", issuer, doc.Issuer)
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return nil, fmt.Errorf("discover %s: jwks_uri: %w", issuer, err)
	}
	b, err = j.get(ctx, doc.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks of %s: %w", issuer, err)
	}
	keys, err := ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks of %s: %w", issuer, err)
	}
	return &keySet{keys: keys}, nil
}

// get fetches url, refusing answers that are not 200 or larger than
// MaxJWKSBytes.
func (j *JWKS) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("document larger than %d bytes", MaxJWKSBytes)
	}
	return b, nil
}

// checkFetchURL allows https, and http only to a loopback IP address (a
// test provider): keys fetched in clear from anywhere else could be
// replaced on the way.
func checkFetchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.IsLoopback() {
			return nil
		}
	}
	return errors.New("must be https (http only on a loopback address)")
}

// jwk is the part of RFC 7517 a verification key needs.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS decodes a JSON Web Key Set into verification keys by kid. Keys
// meant for encryption ("use": "enc"), of unknown types or curves, or
// malformed, are skipped: one odd key must not lock out the others. A kid
// that appears twice is dropped altogether, since either key could be
// meant. It fails only when the document is not a key set at all.
func ParseJWKS(b []byte) (map[string]*PublicKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("decode jwks: no \"keys\"")
	}
	out := map[string]*PublicKey{}
	dup := map[string]bool{}
	for _, raw := range doc.Keys {
		if len(out) >= maxJWKSKeys {
			break
		}
		var k jwk
		if json.Unmarshal(raw, &k) != nil || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			continue
		}
		if _, seen := out[k.Kid]; seen || dup[k.Kid] {
			delete(out, k.Kid)
			dup[k.Kid] = true
			continue
		}
		out[k.Kid] = &PublicKey{Kid: k.Kid, Alg: k.Alg, Key: pub}
	}
	return out, nil
}

func (k *jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		return k.rsa()
	case "EC":
		return k.ec()
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", k.Crv)
		}
		x, err := b64(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", k.Kty)
}

// RSA moduli outside these sizes are refused: small ones are weak, and
// huge ones make every verification expensive.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

func (k *jwk) rsa() (crypto.PublicKey, error) {
	n, err := b64(k.N)
	if err != nil || len(n) == 0 || n[0] == 0 {
		return nil, errors.New("bad RSA modulus")
	}
	e, err := b64(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits", bits)
	}
	exp := 0
	for _, c := range e {
		exp = exp<<8 | int(c)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func (k *jwk) ec() (crypto.PublicKey, error) {
	var curve elliptic.Curve
	switch k.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported EC curve %q", k.Crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, errX := b64(k.X)
	y, errY := b64(k.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, errors.New("bad EC point")
	}
	point := make([]byte, 0, 1+2*size)
	point = append(append(append(point, 4), x...), y...)
	// ParseUncompressedPublicKey checks that the point is on the curve.
	return ecdsa.ParseUncompressedPublicKey(curve, point)
}

// b64 decodes base64url without padding (RFC 7515 §2), as JWKs are written.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
