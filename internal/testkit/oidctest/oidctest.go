// Package oidctest is an OpenID Connect provider for tests: a real HTTP
// server on a loopback port serving discovery and a JWKS whose keys can be
// added and removed while it runs, and the signing of tokens with them. It
// never listens beyond 127.0.0.1 and is not part of the shipped binary.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one signing key of the provider.
type Key struct {
	Kid     string
	Alg     string // RS256, ES256 or EdDSA
	Private crypto.Signer
}

// Public returns the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// Provider serves /.well-known/openid-configuration and /jwks.
type Provider struct {
	// Issuer is the provider's base URL, http://127.0.0.1:port.
	Issuer string

	srv     *httptest.Server
	mu      sync.Mutex
	keys    []*Key
	fetches atomic.Int64
	n       int
}

// New starts a provider holding one RS256 key and stops it when the test
// ends.
func New(t testing.TB) *Provider {
	t.Helper()
	p := &Provider{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.Issuer, "jwks_uri": p.Issuer + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		p.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.JWKS())
	})
	p.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	p.Issuer = p.srv.URL
	p.AddKey(t, "RS256")
	t.Cleanup(p.srv.Close)
	return p
}

// Close stops the server now (to test an issuer that is down).
func (p *Provider) Close() { p.srv.Close() }

// Fetches counts the JWKS requests served.
func (p *Provider) Fetches() int { return int(p.fetches.Load()) }

// AddKey generates a key for alg (RS256, ES256 or EdDSA), publishes it and
// returns it. Kids are k1, k2, ... in order of creation.
func (p *Provider) AddKey(t testing.TB, alg string) *Key {
	t.Helper()
	k, err := NewKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	k.Kid = fmt.Sprintf("k%d", p.n)
	p.keys = append(p.keys, k)
	return k
}

// RemoveKey stops publishing kid.
func (p *Provider) RemoveKey(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, k := range p.keys {
		if k.Kid == kid {
			p.keys = append(p.keys[:i], p.keys[i+1:]...)
			return
		}
	}
}

// Key returns the published key kid, or nil.
func (p *Provider) Key(kid string) *Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.keys {
		if k.Kid == kid {
			return k
		}
	}
	return nil
}

// NewKey generates an unpublished key for alg, with no kid.
func NewKey(alg string) (*Key, error) {
	var s crypto.Signer
	var err error
	switch alg {
	case "RS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("oidctest: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, err
	}
	return &Key{Alg: alg, Private: s}, nil
}

// JWKS returns the published key set.
func (p *Provider) JWKS() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]map[string]string, 0, len(p.keys))
	for _, k := range p.keys {
		keys = append(keys, JWK(k))
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// JWK returns the public JWK of k.
func JWK(k *Key) map[string]string {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"kid": k.Kid, "alg": k.Alg, "use": "sig"}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", enc(pub.N.Bytes()), enc(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		b, _ := pub.Bytes() // 0x04 || x || y
		size := (len(b) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", enc(b[1:1+size]), enc(b[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(pub)
	}
	return m
}

// Sign returns a compact JWT of claims signed with k, with k's kid.
func Sign(t testing.TB, k *Key, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Alg), jwt.MapClaims(claims))
	if k.Kid != "" {
		tok.Header["kid"] = k.Kid
	}
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
