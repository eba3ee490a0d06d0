package vault

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aegis-platform/aegis"
	vaultapi "github.com/hashicorp/vault/api"
)

// TransitConfig configures the HashiCorp Vault Transit KMS. Empty fields
// take the Vault client's own environment (VAULT_ADDR, VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_CACERT, …), as the vault CLI does.
type TransitConfig struct {
	// Address of the Vault server (VAULT_ADDR when empty).
	Address string
	// Token with update on <mount>/encrypt/<key> and <mount>/decrypt/<key>
	// (VAULT_TOKEN when empty).
	Token string
	// Mount is the Transit engine's path ("transit" when empty).
	Mount string
	// Key is the Transit key's name; required.
	Key string
	// Derived must be true when the key was created with derived=true:
	// the associated data is then also sent as Transit's context, so the
	// wrapping is sealed under a key derived for it.
	Derived bool
	// MaxRetries of a request answered 5xx (the client's default, 2, when
	// zero; -1 for none).
	MaxRetries int
}

// Transit is a KMS whose key never leaves HashiCorp Vault: wrapping and
// unwrapping are calls to Transit's encrypt and decrypt endpoints.
//
// Transit has no associated data. The vault binds it anyway: the plaintext
// sent is SHA-256(associated data) followed by the data key, and Decrypt
// refuses a result whose prefix is not the hash of the associated data it
// is given. Transit's AES-GCM authenticates the whole plaintext, so the
// prefix cannot be changed without the key. With a derived key the
// associated data is also the context, which Transit requires of such keys.
type Transit struct {
	c       *vaultapi.Client
	encPath string
	decPath string
	derived bool
}

// NewTransit returns the Transit KMS of cfg. It does not call Vault;
// vault.Open does, through the check record.
func NewTransit(cfg TransitConfig) (*Transit, error) {
	if cfg.Key == "" {
		return nil, fmt.Errorf("transit kms: no key name: %w", aegis.ErrInvalidArgument)
	}
	mount := strings.Trim(cfg.Mount, "/")
	if mount == "" {
		mount = "transit"
	}
	vc := vaultapi.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("transit kms: %w", vc.Error)
	}
	if cfg.Address != "" {
		vc.Address = cfg.Address
	}
	if cfg.MaxRetries != 0 {
		vc.MaxRetries = max(cfg.MaxRetries, 0)
	}
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("transit kms: %w", err)
	}
	if cfg.Token != "" {
		c.SetToken(cfg.Token)
	}
	if c.Token() == "" {
		return nil, fmt.Errorf("transit kms: no token (set VAULT_TOKEN): %w", aegis.ErrInvalidArgument)
	}
	key := url.PathEscape(cfg.Key)
	return &Transit{
		c:       c,
		encPath: mount + "/encrypt/" + key,
		decPath: mount + "/decrypt/" + key,
		derived: cfg.Derived,
	}, nil
}

// Encrypt wraps plaintext with the Transit key.
func (t *Transit) Encrypt(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	sum := sha256.Sum256(ad)
	msg := append(sum[:], plaintext...)
	body := map[string]any{"plaintext": base64.StdEncoding.EncodeToString(msg)}
	clear(msg)
	if t.derived {
		body["context"] = base64.StdEncoding.EncodeToString(ad)
	}
	s, err := t.c.Logical().WriteWithContext(ctx, t.encPath, body)
	if err != nil {
		return nil, fmt.Errorf("transit encrypt: %w", classify(err))
	}
	ct, _ := dataString(s, "ciphertext")
	if !strings.HasPrefix(ct, "vault:v") {
		return nil, fmt.Errorf("transit encrypt: answer without a ciphertext: %w", aegis.ErrUnavailable)
	}
	return []byte(ct), nil
}

// Decrypt unwraps ciphertext with the Transit key and checks it was
// sealed with ad.
func (t *Transit) Decrypt(ctx context.Context, ciphertext, ad []byte) ([]byte, error) {
	body := map[string]any{"ciphertext": string(ciphertext)}
	if t.derived {
		body["context"] = base64.StdEncoding.EncodeToString(ad)
	}
	s, err := t.c.Logical().WriteWithContext(ctx, t.decPath, body)
	if err != nil {
		return nil, fmt.Errorf("transit decrypt: %w", classify(err))
	}
	p64, ok := dataString(s, "plaintext")
	if !ok {
		return nil, fmt.Errorf("transit decrypt: answer without a plaintext: %w", aegis.ErrUnavailable)
	}
	msg, err := base64.StdEncoding.DecodeString(p64)
	if err != nil {
		return nil, errors.New("transit decrypt: plaintext is not base64")
	}
	sum := sha256.Sum256(ad)
	if len(msg) < len(sum) || subtle.ConstantTimeCompare(msg[:len(sum)], sum[:]) != 1 {
		clear(msg)
		return nil, errors.New("transit decrypt: sealed with other associated data")
	}
	return msg[len(sum):], nil
}

func dataString(s *vaultapi.Secret, field string) (string, bool) {
	if s == nil || s.Data == nil {
		return "", false
	}
	v, ok := s.Data[field].(string)
	return v, ok
}

// classify keeps Vault's 400 (a ciphertext that does not decrypt) a plain
// failure and makes everything else (unreachable, 5xx, a token refused)
// aegis.ErrUnavailable, so a Vault that cannot answer is never taken for
// a wrong master key. Vault's messages name paths, never plaintexts.
func classify(err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == 400 {
		return fmt.Errorf("refused: %s", strings.Join(re.Errors, "; "))
	}
	return errors.Join(err, aegis.ErrUnavailable)
}
