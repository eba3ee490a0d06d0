package vault

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
)

// Associated data. Every sealed byte string is bound to what it is and to
// whose it is: a purpose label, the app, the secret's name and the version,
// separated by NUL bytes (which neither an app nor a name can contain), so
// no two distinct tuples share an encoding. A value moved to another
// secret, app or version, or a wrapped key moved into a value's place, no
// longer opens.
func valueAD(app, name string, version int) []byte {
	return ad("value", app, name, version)
}

func keyAD(app, name string, version int) []byte {
	return ad("datakey", app, name, version)
}

func ad(purpose, app, name string, version int) []byte {
	b := make([]byte, 0, 32+len(app)+len(name))
	b = append(b, "aegis-vault/1\x00"...)
	b = append(b, purpose...)
	b = append(b, 0)
	b = append(b, app...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	return strconv.AppendInt(b, int64(version), 10)
}

// sealed is one version's envelope: the value encrypted under its own data
// key, and that data key (a Tink keyset of one AES256-GCM key) encrypted by
// the KEK.
type sealed struct {
	wrappedKey []byte
	ciphertext []byte
}

// seal encrypts value under a fresh data key and wraps the key with kek.
func seal(ctx context.Context, kek KMS, app, name string, version int, value []byte) (sealed, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return sealed{}, fmt.Errorf("new data key: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return sealed{}, fmt.Errorf("new data key: %w", err)
	}
	ct, err := a.Encrypt(value, valueAD(app, name, version))
	if err != nil {
		return sealed{}, fmt.Errorf("encrypt value: %w", err)
	}
	wk, err := wrapKey(ctx, kek, h, app, name, version)
	if err != nil {
		return sealed{}, err
	}
	return sealed{wrappedKey: wk, ciphertext: ct}, nil
}

// wrapKey encrypts the data keyset with the KEK. Only the encrypted bytes
// are kept, not Tink's EncryptedKeyset message: its KeysetInfo (key ids
// and type) is not authenticated, and every stored byte must be.
func wrapKey(ctx context.Context, kek KMS, h *keyset.Handle, app, name string, version int) ([]byte, error) {
	var w encryptedKeyset
	if err := h.WriteWithContext(ctx, &w, tinkKEK{kek}, keyAD(app, name, version)); err != nil {
		return nil, fmt.Errorf("wrap data key: %w", err)
	}
	return w.ek.GetEncryptedKeyset(), nil
}

func unwrapKey(ctx context.Context, kek KMS, wrapped []byte, app, name string, version int) (*keyset.Handle, error) {
	r := encryptedKeyset{ek: &tinkpb.EncryptedKeyset{EncryptedKeyset: wrapped}}
	h, err := keyset.ReadWithContext(ctx, &r, tinkKEK{kek}, keyAD(app, name, version))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key: %w", errOpen)
	}
	return h, nil
}

// rewrap unwraps a data key with from and wraps it again with to; the
// value's ciphertext does not change.
func rewrap(ctx context.Context, from, to KMS, wrapped []byte, app, name string, version int) ([]byte, error) {
	h, err := unwrapKey(ctx, from, wrapped, app, name, version)
	if err != nil {
		return nil, err
	}
	return wrapKey(ctx, to, h, app, name, version)
}

// encryptedKeyset is the keyset.Writer and keyset.Reader of one encrypted
// keyset in memory.
type encryptedKeyset struct{ ek *tinkpb.EncryptedKeyset }

func (e *encryptedKeyset) Write(*tinkpb.Keyset) error {
	return errors.New("vault: refusing to write a keyset in the clear")
}

func (e *encryptedKeyset) WriteEncrypted(ek *tinkpb.EncryptedKeyset) error {
	e.ek = ek
	return nil
}

func (e *encryptedKeyset) Read() (*tinkpb.Keyset, error) {
	return nil, errors.New("vault: refusing to read a keyset in the clear")
}

func (e *encryptedKeyset) ReadEncrypted() (*tinkpb.EncryptedKeyset, error) {
	if e.ek == nil {
		return nil, errors.New("no keyset")
	}
	return e.ek, nil
}

// checkPlaintext is the check record's fixed content, sealed by the KEK
// when the vault is first opened; a KEK that cannot open it is not the one
// the vault was created with.
var (
	checkPlaintext = []byte("aegis vault master key check v1")
	checkAD        = []byte("aegis-vault/1\x00check")
)
