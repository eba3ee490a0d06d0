package server

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAuditKeyIsCreatedOnceAndKeptPrivate(t *testing.T) {
	dir := t.TempDir()
	key, created, err := loadAuditKey(dir)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	again, created, err := loadAuditKey(dir)
	if err != nil || created || !key.Equal(again) {
		t.Fatalf("second load: created %v, same %v, %v", created, key.Equal(again), err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	path := filepath.Join(dir, "keys", "audit.key")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, want mode 0600", path, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadAuditKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable audit key was accepted: %v", err)
	}
}
