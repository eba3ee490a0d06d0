package auth

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAdminTokenCreatedThenReused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "state", "admin.token")

	tok, created, err := LoadOrCreateAdminToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(tok) != 43 || !isToken68(tok) {
		t.Fatalf("first call: token %d chars, created %v", len(tok), created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("token file mode %04o, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Fatalf("parent dir mode %04o, want 0700", perm)
	}
	// No temp file is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the token", len(entries))
	}

	again, created, err := LoadOrCreateAdminToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || again != tok {
		t.Fatalf("second call: created %v, same token %v", created, again == tok)
	}
}

func TestAdminTokenRefusesLoosePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "admin.token")
	if _, _, err := LoadOrCreateAdminToken(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateAdminToken(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), path) {
			t.Fatalf("mode %04o: err = %v, want a refusal naming the file and the fix", mode, err)
		}
	}
	// 0400 is fine: only the owner can read it.
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateAdminToken(path); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
}

func TestAdminTokenRefusesBadContent(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":  "",
		"short":  "abc\n",
		"spaces": strings.Repeat("a", 20) + " " + strings.Repeat("b", 20),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateAdminToken(path)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if content != "" && strings.Contains(err.Error(), strings.TrimSpace(content)) {
			t.Fatalf("%s: error repeats the file's content: %v", name, err)
		}
	}
	// A directory where the file should be is an error, not a new token.
	if _, _, err := LoadOrCreateAdminToken(dir); err == nil {
		t.Fatal("directory accepted as token file")
	}
}

func TestAdminTokenMatches(t *testing.T) {
	tests := []struct {
		expected, presented string
		want                bool
	}{
		{"secret-token", "secret-token", true},
		{"secret-token", "secret-tokeN", false},
		{"secret-token", "secret-toke", false},
		{"secret-token", "", false},
		{"", "", false},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := AdminTokenMatches(tt.expected, tt.presented); got != tt.want {
			t.Errorf("AdminTokenMatches(%q, %q) = %v", tt.expected, tt.presented, got)
		}
	}
}
