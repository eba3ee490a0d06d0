package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

func noEnv(string) (string, bool) { return "", false }

// sameKey reports whether a and b are the same key: b opens what a sealed.
func sameKey(t *testing.T, a, b KMS) bool {
	t.Helper()
	ct, err := a.Encrypt(t.Context(), []byte("x"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Decrypt(t.Context(), ct, []byte("ad"))
	return err == nil
}

func TestMasterKeyDefaultFile(t *testing.T) {
	dir := t.TempDir()
	k1, info, err := LoadMasterKey(MasterKeyOptions{ConfigDir: dir, LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "aegis", "master.key")
	if info.Source != SourceDefaultFile || info.Path != want || !info.Created {
		t.Fatalf("info = %+v", info)
	}
	for path, mode := range map[string]os.FileMode{want: 0o600, filepath.Dir(want): 0o700} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, mode)
		}
	}
	k2, info, err := LoadMasterKey(MasterKeyOptions{ConfigDir: dir, LookupEnv: noEnv})
	if err != nil || info.Created {
		t.Fatalf("second load: %+v, %v", info, err)
	}
	if !sameKey(t, k1, k2) {
		t.Fatal("the second start read another key")
	}
}

func TestMasterKeySources(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	b64 := base64.StdEncoding.EncodeToString(key)
	fromKey, _ := NewLocalKMS(key)

	file := filepath.Join(dir, "k")
	if err := os.WriteFile(file, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "raw")
	if err := os.WriteFile(raw, key, 0o400); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) (string, bool) {
		return func(name string) (string, bool) { return v, name == MasterKeyEnv }
	}
	for name, opts := range map[string]MasterKeyOptions{
		"file (base64)":         {File: file, LookupEnv: env("junk")}, // the flag wins over the environment
		"file (raw)":            {File: raw, LookupEnv: noEnv},
		"environment":           {LookupEnv: env(b64), ConfigDir: dir},
		"environment (newline)": {LookupEnv: env(b64 + "\n"), ConfigDir: dir},
	} {
		k, info, err := LoadMasterKey(opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !sameKey(t, fromKey, k) {
			t.Fatalf("%s: another key", name)
		}
		if strings.HasPrefix(name, "env") && (info.Source != SourceEnv || info.Path != "") {
			t.Fatalf("%s: info %+v", name, info)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "aegis")); !os.IsNotExist(err) {
		t.Fatal("the default file was created although the environment named a key")
	}
}

func TestMasterKeyRefused(t *testing.T) {
	dir := t.TempDir()
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"group readable", write("g", good, 0o640), "chmod 600"},
		{"world readable", write("w", good, 0o604), "chmod 600"},
		{"malformed", write("m", "not a key at all!", 0o600), "not base64"},
		{"short", write("s", base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600), "16 bytes, want 32"},
		{"long", write("l", base64.StdEncoding.EncodeToString(make([]byte, 33)), 0o600), "33 bytes, want 32"},
		{"missing", filepath.Join(dir, "none"), "no such file"},
		{"directory", dir, "not a regular file"},
	} {
		_, _, err := LoadMasterKey(MasterKeyOptions{File: tc.path, LookupEnv: noEnv})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), good) {
			t.Errorf("%s: the error quotes the key", tc.name)
		}
	}
	// A bad environment value is refused without being quoted, and never
	// replaced by the default file.
	bad := "c2VjcmV0LWJ1dC10b28tc2hvcnQ="
	_, _, err := LoadMasterKey(MasterKeyOptions{ConfigDir: dir, LookupEnv: func(string) (string, bool) { return bad, true }})
	if err == nil || !strings.Contains(err.Error(), MasterKeyEnv) || strings.Contains(err.Error(), bad) {
		t.Fatalf("bad environment key: %v", err)
	}
	// A default file made group readable after its creation is refused too.
	cfg := t.TempDir()
	if _, _, err := LoadMasterKey(MasterKeyOptions{ConfigDir: cfg, LookupEnv: noEnv}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(cfg, "aegis", "master.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadMasterKey(MasterKeyOptions{ConfigDir: cfg, LookupEnv: noEnv}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("default file made readable: %v", err)
	}
}

// Rotating the master key file: the data keys are re-wrapped under a new
// key that replaces the file, the old one kept beside it; the new file
// opens the vault, the old key no longer does; a .next file left by an
// interrupted rotation stops the next one.
func TestRotateMasterFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kek, info, err := LoadMasterKey(MasterKeyOptions{ConfigDir: dir, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	store := memkv.New()
	v, err := Open(ctx, Config{Store: store, KMS: kek})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Set(ctx, "app", "token", []byte("value-1")); err != nil {
		t.Fatal(err)
	}
	n, err := RotateMasterFile(ctx, v, info.Path)
	if err != nil || n < 1 {
		t.Fatalf("RotateMasterFile = %d, %v", n, err)
	}
	if got, err := v.Read(ctx, "app", "token"); err != nil || string(got) != "value-1" {
		t.Fatalf("read after rotation: %q, %v", got, err)
	}
	newKEK, err := readKeyFile(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{Store: store, KMS: newKEK}); err != nil {
		t.Errorf("the new key file does not open the vault: %v", err)
	}
	if _, err := Open(ctx, Config{Store: store, KMS: kek}); !errors.Is(err, ErrWrongMasterKey) {
		t.Errorf("the old key still opens the vault: %v", err)
	}
	if _, err := readKeyFile(info.Path + ".previous"); err != nil {
		t.Errorf("the old key is not kept beside the new: %v", err)
	}
	if err := os.WriteFile(info.Path+".next", []byte("left over"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateMasterFile(ctx, v, info.Path); !errors.Is(err, aegis.ErrConflict) {
		t.Errorf("a rotation over a left-over .next: %v", err)
	}
}
