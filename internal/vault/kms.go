package vault

import (
	"context"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KMS is a key-encryption key (KEK): the key that wraps every data key of
// the vault. It is an AEAD with a context, the shape of Tink's
// tink.AEADWithContext: Encrypt seals plaintext bound to associatedData;
// Decrypt returns the plaintext only when ciphertext is unmodified and
// associatedData is the one it was sealed with, and an error otherwise.
//
// The vault never hands a KMS a secret value: only serialized data keysets
// (a few dozen bytes) and the check record's fixed plaintext. An
// implementation must be safe for concurrent use and must never log what it
// is given. Two implementations ship: the local master key (LoadMasterKey,
// NewLocalKMS) and HashiCorp Vault Transit (NewTransit).
type KMS interface {
	Encrypt(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext, associatedData []byte) ([]byte, error)
}

// MasterKeySize is the size in bytes of a local master key (AES-256).
const MasterKeySize = 32

// localKMS is a master key held in this process: AES-256-GCM through
// Tink's aead/subtle primitive (a random 12-byte nonce per message, the
// tag checked in constant time). A raw key rather than a Tink keyset
// because the operator keeps 32 bytes in a file or an environment variable,
// not a serialized keyset; rotation of the KEK is RotateMaster's job.
type localKMS struct{ a tink.AEAD }

// NewLocalKMS returns the KMS of a 32-byte master key. The key is copied
// into the cipher; the caller may wipe its slice afterwards.
func NewLocalKMS(key []byte) (KMS, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("master key: %d bytes, want %d", len(key), MasterKeySize)
	}
	a, err := subtle.NewAESGCM(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return localKMS{a}, nil
}

func (k localKMS) Encrypt(_ context.Context, plaintext, ad []byte) ([]byte, error) {
	return k.a.Encrypt(plaintext, ad)
}

func (k localKMS) Decrypt(_ context.Context, ciphertext, ad []byte) ([]byte, error) {
	return k.a.Decrypt(ciphertext, ad)
}

// tinkKEK presents a KMS as the tink.AEADWithContext that
// keyset.Handle.WriteWithContext and keyset.ReadWithContext wrap and
// unwrap a data keyset with.
type tinkKEK struct{ k KMS }

func (t tinkKEK) EncryptWithContext(ctx context.Context, p, ad []byte) ([]byte, error) {
	return t.k.Encrypt(ctx, p, ad)
}

func (t tinkKEK) DecryptWithContext(ctx context.Context, c, ad []byte) ([]byte, error) {
	return t.k.Decrypt(ctx, c, ad)
}

var _ tink.AEADWithContext = tinkKEK{}
