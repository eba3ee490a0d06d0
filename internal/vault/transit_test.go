package vault

import (
	"errors"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/internal/testkit/transittest"
)

func fakeKMS(t *testing.T, f *transittest.Server, key, token string) *Transit {
	t.Helper()
	k, err := NewTransit(TransitConfig{Address: f.URL(), Token: token, Key: key, Derived: f.Derived(key), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTransit(t *testing.T) {
	ft := transittest.Start(t, "root-token")
	ctx := t.Context()
	for _, keyName := range []string{"aegis", "aegis-derived"} {
		k := fakeKMS(t, ft, keyName, "root-token")
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
	bad := fakeKMS(t, ft, "aegis", "wrong-token")
	if _, err := bad.Encrypt(ctx, []byte("x"), []byte("y")); !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := NewTransit(TransitConfig{Address: ft.URL(), Token: "t"}); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Fatalf("no key name: %v", err)
	}
}

// TestTransitVault runs the vault on the Transit KMS: open, set, read,
// rotate the master key to a second Transit key, and a Vault that cannot
// answer at start is not taken for a wrong key.
func TestTransitVault(t *testing.T) {
	ft := transittest.Start(t, "root-token")
	ctx := t.Context()
	store := memkv.New()
	k := fakeKMS(t, ft, "aegis", "root-token")
	v, err := Open(ctx, Config{Store: store, KMS: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Set(ctx, "shop", "token", []byte("through transit")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, v, "shop", "token", "through transit")
	before := ft.Calls()
	mustRead(t, v, "shop", "token", "through transit")
	if ft.Calls() == before {
		t.Fatal("a read did not unwrap its data key through Transit")
	}

	derived := fakeKMS(t, ft, "aegis-derived", "root-token")
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

	ft.SetDown(true)
	_, err = Open(ctx, Config{Store: store, KMS: derived})
	if !errors.Is(err, aegis.ErrUnavailable) || errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("open with Vault sealed: %v", err)
	}
}
