package server

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestEventKeyIsCreatedOnceAndKeptPrivate(t *testing.T) {
	dir := t.TempDir()
	key, created, err := loadEventKey(dir)
	if err != nil || !created || len(key) != 32 {
		t.Fatalf("first load: %d bytes, created %v, %v", len(key), created, err)
	}
	again, created, err := loadEventKey(dir)
	if err != nil || created || !bytes.Equal(key, again) {
		t.Fatalf("second load: created %v, same %v, %v", created, bytes.Equal(key, again), err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	path := filepath.Join(dir, "keys", "events.key")
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want mode %04o", p, err, want)
		}
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadEventKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a group-readable key file was accepted: %v", err)
	}
}

func TestEventKeyFileMustHoldAKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "events.key")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	// Long enough to pass as a token, but not base64url of 32 bytes.
	secret := strings.Repeat("a", 40) + "~"
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadEventKey(dir)
	if err == nil {
		t.Fatal("a key file without a key was accepted")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error repeats the file's content: %v", err)
	}
}
