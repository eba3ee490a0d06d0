package vault

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/tink-crypto/tink-go/v2/aead/subtle"
)

// fakeTransit speaks the part of Vault's Transit HTTP API the KMS uses, on
// loopback: PUT or POST /v1/<mount>/encrypt/<key> {"plaintext","context"}
// → {"data":{"ciphertext":"vault:v1:…"}}, and decrypt back; a request
// without the token is answered 403, a ciphertext that does not
// authenticate 400, as Vault does. A derived key seals under the context.
type fakeTransit struct {
	srv     *httptest.Server
	token   string
	keys    map[string]*subtle.AESGCM
	derived map[string]bool
	calls   atomic.Int64
	down    atomic.Bool
}

func newFakeTransit(t *testing.T, token string) *fakeTransit {
	f := &fakeTransit{token: token, keys: map[string]*subtle.AESGCM{}, derived: map[string]bool{}}
	for name, derived := range map[string]bool{"aegis": false, "aegis-derived": true} {
		k := make([]byte, 32)
		rand.Read(k)
		f.keys[name], _ = subtle.NewAESGCM(k)
		f.derived[name] = derived
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTransit) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
}

func (f *fakeTransit) serve(w http.ResponseWriter, r *http.Request) {
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

func (f *fakeTransit) kms(t *testing.T, key, token string) *Transit {
	t.Helper()
	k, err := NewTransit(TransitConfig{Address: f.srv.URL, Token: token, Key: key, Derived: f.derived[key], MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTransit(t *testing.T) {
	ft := newFakeTransit(t, "root-token")
	ctx := t.Context()
	for _, keyName := range []string{"aegis", "aegis-derived"} {
		k := ft.kms(t, keyName, "root-token")
		ct, err := k.Encrypt(ctx, []byte("data key"), []byte("ad one"))
		if err != nil {
			t.Fatal(keyName, err)
		}
		if !strings.HasPrefix(string(ct), "vault:v1:") {
			t.Fatalf("%s: ciphertext %q", keyName, ct)
		}
		if p, err := k.Decrypt(ctx, ct, []byte("ad one")); err != nil || string(p) != "data key" {
			t.Fatalf("%s: decrypt = %q, %v", keyName, p, err)
		}
		if _, err := k.Decrypt(ctx, ct, []byte("ad two")); err == nil || errors.Is(err, aegis.ErrUnavailable) {
			t.Fatalf("%s: decrypt with other associated data: %v", keyName, err)
		}
		flipped := []byte(strings.Clone(string(ct)))
		flipped[len(flipped)-3] ^= 1
		if _, err := k.Decrypt(ctx, flipped, []byte("ad one")); err == nil {
			t.Fatalf("%s: decrypt of a flipped ciphertext succeeded", keyName)
		}
	}
	// A wrong token is refused by Vault: unavailable, not a wrong key.
	bad := ft.kms(t, "aegis", "wrong-token")
	if _, err := bad.Encrypt(ctx, []byte("x"), []byte("y")); !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := NewTransit(TransitConfig{Address: ft.srv.URL, Token: "t"}); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Fatalf("no key name: %v", err)
	}
}

// TestTransitVault runs the vault on the Transit KMS: open, set, read,
// rotate the master key to a second Transit key, and a Vault that cannot
// answer at start is not taken for a wrong key.
func TestTransitVault(t *testing.T) {
	ft := newFakeTransit(t, "root-token")
	ctx := t.Context()
	store := memkv.New()
	k := ft.kms(t, "aegis", "root-token")
	v, err := Open(ctx, Config{Store: store, KMS: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Set(ctx, "shop", "token", []byte("through transit")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, v, "shop", "token", "through transit")
	before := ft.calls.Load()
	mustRead(t, v, "shop", "token", "through transit")
	if ft.calls.Load() == before {
		t.Fatal("a read did not unwrap its data key through Transit")
	}

	derived := ft.kms(t, "aegis-derived", "root-token")
	if n, err := v.RotateMaster(ctx, derived); err != nil || n != 1 {
		t.Fatalf("rotate master to the derived key = %d, %v", n, err)
	}
	v2, err := Open(ctx, Config{Store: store, KMS: derived})
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, v2, "shop", "token", "through transit")
	if _, err := Open(ctx, Config{Store: store, KMS: k}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("open with the previous Transit key: %v", err)
	}

	ft.down.Store(true)
	_, err = Open(ctx, Config{Store: store, KMS: derived})
	if !errors.Is(err, aegis.ErrUnavailable) || errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("open with Vault sealed: %v", err)
	}
}
