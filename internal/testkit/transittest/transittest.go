// Package transittest is a stand-in for HashiCorp Vault's Transit secrets
// engine on loopback, for the tests of the vault's Transit KMS: a real
// HTTP server speaking the part of its API the KMS uses.
package transittest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
)

// Server speaks the part of Vault's Transit HTTP API the KMS uses, on
// loopback: PUT or POST /v1/<mount>/encrypt/<key> {"plaintext","context"}
// → {"data":{"ciphertext":"vault:v1:…"}}, and decrypt back; a request
// without the token is answered 403, a ciphertext that does not
// authenticate 400, as Vault does. A derived key seals under the context.
type Server struct {
	srv     *httptest.Server
	token   string
	keys    map[string]*subtle.AESGCM
	derived map[string]bool
	calls   atomic.Int64
	down    atomic.Bool
}

// Keys the stand-in has: "aegis" (plain) and "aegis-derived" (created with
// derived=true, so a request must carry a context).
const (
	Key        = "aegis"
	DerivedKey = "aegis-derived"
)

// URL is the stand-in's address, as VAULT_ADDR would be.
func (f *Server) URL() string { return f.srv.URL }

// Calls is how many requests it has answered.
func (f *Server) Calls() int64 { return f.calls.Load() }

// SetDown makes it answer every request 503 "Vault is sealed" (true), or
// serve again (false).
func (f *Server) SetDown(down bool) { f.down.Store(down) }

// Derived reports whether key was created derived.
func (f *Server) Derived(key string) bool { return f.derived[key] }

func Start(t testing.TB, token string) *Server {
	f := &Server{token: token, keys: map[string]*subtle.AESGCM{}, derived: map[string]bool{}}
	for name, derived := range map[string]bool{Key: false, DerivedKey: true} {
		k := make([]byte, 32)
		rand.Read(k)
		f.keys[name], _ = subtle.NewAESGCM(k)
		f.derived[name] = derived
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *Server) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.down.Load() {
		f.fail(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if r.Header.Get("X-Vault-Token") != f.token {
		f.fail(w, http.StatusForbidden, "permission denied")
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		f.fail(w, http.StatusMethodNotAllowed, "method")
		return
	}
	op, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/transit/"), "/")
	key := f.keys[name]
	if !ok || key == nil {
		f.fail(w, http.StatusBadRequest, "encryption key not found")
		return
	}
	var body struct{ Plaintext, Ciphertext, Context string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.fail(w, http.StatusBadRequest, "bad body")
		return
	}
	var ad []byte
	if f.derived[name] {
		if body.Context == "" {
			f.fail(w, http.StatusBadRequest, "missing 'context' for key derivation")
			return
		}
		ad, _ = base64.StdEncoding.DecodeString(body.Context)
	}
	var data map[string]string
	switch op {
	case "encrypt":
		p, err := base64.StdEncoding.DecodeString(body.Plaintext)
		if err != nil {
			f.fail(w, http.StatusBadRequest, "plaintext is not base64")
			return
		}
		ct, _ := key.Encrypt(p, ad)
		data = map[string]string{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(ct)}
	case "decrypt":
		ct, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(body.Ciphertext, "vault:v1:"))
		if err != nil || !strings.HasPrefix(body.Ciphertext, "vault:v1:") {
			f.fail(w, http.StatusBadRequest, "invalid ciphertext")
			return
		}
		p, err := key.Decrypt(ct, ad)
		if err != nil {
			f.fail(w, http.StatusBadRequest, "cipher: message authentication failed")
			return
		}
		data = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(p)}
	default:
		f.fail(w, http.StatusNotFound, "no handler")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": data})
}
