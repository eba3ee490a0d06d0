package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/vault"
)

// aegisOffline runs the CLI in-process with no server to talk to (restore).
func aegisOffline(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func writeMasterKey(t *testing.T, path string) {
	t.Helper()
	k := make([]byte, vault.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestore: a backup taken through the CLI while the server
// serves holds none of the platform's data in the clear; a modified, cut or
// wrong-key copy is refused and leaves nothing behind; the backup restored
// onto a fresh directory starts a server that has everything back (the
// diary's entry and thumbnail, a secret, a table value, an object, the
// authenticator, an audit chain that verifies) and passes the diary's
// end-to-end scenario.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	keyDir := t.TempDir()
	masterFile := filepath.Join(keyDir, "master.key")
	writeMasterKey(t, masterFile)
	withMaster := func(c *server.Config) { c.MasterKey = vault.MasterKeyOptions{File: masterFile} }
	in := startServerWith(t, t.TempDir(), withMaster)
	closed := false
	defer func() {
		if !closed {
			in.close(t)
		}
	}()

	// The diary, deployed and keyed through the CLI.
	deployTravelDiary(t, in)
	code, out, errs := aegisCLI(t, in, "keys", "create", "diary", "-o", "json")
	var diaryKey struct{ Key string }
	if code != 0 || json.Unmarshal([]byte(out), &diaryKey) != nil || diaryKey.Key == "" {
		t.Fatalf("aegis keys create: %d %s %s", code, out, errs)
	}
	entry := map[string]string{"title": "Backup-Title-5c1f", "text": "Backup-Text-a93e", "image": base64.StdEncoding.EncodeToString(samplePNG(t, 320, 240))}
	st, body, _ := call(t, in.gateway, "POST", "/entries", diaryKey.Key, entry)
	var created struct{ ID string }
	if st != 201 || json.Unmarshal(body, &created) != nil || created.ID == "" {
		t.Fatalf("POST /entries: %d %s", st, body)
	}
	var thumb []byte
	eventually(t, 30*time.Second, "the entry's thumbnail", func() bool {
		st, b, _ := call(t, in.gateway, "GET", "/entries/"+created.ID+"/thumbnail", diaryKey.Key, nil)
		thumb = b
		return st == 200
	})

	// Markers: a secret, a table value, an object.
	const (
		secretMarker = "backup-secret-marker-3f9a1c"
		kvMarker     = "backup-kv-marker-8e2d4b"
		objMarker    = "backup-object-marker-61c0aa"
	)
	for _, s := range []struct{ name, value string }{{"WEBHOOK_TOKEN", secretMarker}, {"NOT_SET", "other"}} {
		if code, _, errs := aegisCLIStdin(t, in, s.value, "secrets", "set", "vaulted", s.name); code != 0 {
			t.Fatalf("aegis secrets set: %d %s", code, errs)
		}
	}
	deployProbe(t, in, "testdata/probe.yaml")
	deployProbe(t, in, "testdata/secrets.yaml")
	pk, err := in.admin.CreateKey(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := probe(t, in.gateway, pk.Key, "probe", "kv-put", map[string]any{"table": "allowed", "key": "marker", "value": kvMarker}); !o.OK {
		t.Fatalf("kv-put: %+v", o)
	}
	if o, _ := probe(t, in.gateway, pk.Key, "probe", "obj-put", map[string]any{"key": "ok/marker.txt", "value": objMarker}); !o.OK {
		t.Fatalf("obj-put: %+v", o)
	}

	// Only a platform admin may take a backup: it holds every app's data.
	for _, tc := range []struct {
		role string
		apps []string
		msg  string
	}{{"deployer", nil, "role deployer may not take backups"}, {"admin", []string{"probe"}, "forbidden"}} {
		tok, err := in.admin.CreateAdminToken(ctx, "backup-"+tc.role+strconv.Itoa(len(tc.apps)), tc.role, tc.apps)
		if err != nil {
			t.Fatal(err)
		}
		_, err = as(in, tok.Token).Backup(ctx, nil, io.Discard, nil)
		wantRefused(t, tc.role+" backup", err, http.StatusForbidden, tc.msg)
	}

	// An authenticator: the backup is a dangerous change and needs a code.
	e, err := in.admin.EnrollMFA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	totp := totpSecret(t, e.URI)
	if _, err := in.admin.ConfirmMFA(ctx, codeAt(t, totp, time.Now().Add(-30*time.Second))); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "aegis.backup")
	backupKey := filepath.Join(keyDir, "backup.key")
	if code, _, errs := aegisCLI(t, in, "backup", "--out", file); code == 0 || !strings.Contains(errs, "--otp") {
		t.Fatalf("a backup without a code: exit %d %s", code, errs)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused backup left its file")
	}
	code, out, errs = aegisCLI(t, in, "--otp", codeAt(t, totp, time.Now()), "backup", "--out", file, "--backup-key", backupKey)
	if code != 0 || !strings.Contains(out, "backup written to "+file) || !strings.Contains(errs, "backup key created in "+backupKey) {
		t.Fatalf("aegis backup: exit %d\n%s\n%s", code, out, errs)
	}
	for _, p := range []string{file, backupKey} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", p, fi, err)
		}
	}
	if _, err := os.Stat(file + ".partial"); err == nil {
		t.Error("the .partial file is left")
	}
	if l := in.logs.Lines(`"backup written"`); len(l) != 1 {
		t.Errorf("want one line for the backup, got %v", l)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, mk := range []string{secretMarker, kvMarker, objMarker, "Backup-Title-5c1f", "Backup-Text-a93e", in.srv.AdminToken()} {
		for _, form := range []string{mk, base64.StdEncoding.EncodeToString([]byte(mk))} {
			if bytes.Contains(data, []byte(form)) {
				t.Errorf("the backup file holds %q in the clear", mk)
			}
		}
	}
	// The change is in the audit log.
	code, out, _ = aegisCLI(t, in, "audit", "list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"backup"`) {
		t.Errorf("the audit log has no backup record: %d %s", code, out)
	}
	closed = true
	in.close(t)

	restoreRoot := t.TempDir()
	env := map[string]string{}
	refused := func(name string, b []byte, args ...string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(restoreRoot, name)
		code, _, errs := aegisOffline(t, env, append([]string{"restore", p, "--data", target}, args...)...)
		if code == 0 {
			t.Fatalf("%s: restored", name)
		}
		if !strings.Contains(errs, "nothing was restored") {
			t.Errorf("%s: %s", name, errs)
		}
		if _, err := os.Stat(target); err == nil {
			t.Errorf("%s: %s exists after a refused restore", name, target)
		}
		t.Logf("%s: %s", name, strings.TrimSpace(errs))
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x01
	refused("tampered", flipped, "--master-key-file", masterFile)
	refused("truncated", data[:len(data)/2], "--master-key-file", masterFile)
	otherKey := filepath.Join(keyDir, "other.key")
	writeMasterKey(t, otherKey)
	refused("wrong-key", data, "--master-key-file", otherKey)
	if left, _ := os.ReadDir(restoreRoot); len(left) != 0 {
		t.Fatalf("refused restores left %v", left)
	}

	// The backup key alone opens the file.
	if code, out, errs := aegisOffline(t, env, "restore", file, "--data", filepath.Join(restoreRoot, "by-backup-key"), "--backup-key", backupKey); code != 0 {
		t.Fatalf("restore with the backup key: %d %s %s", code, out, errs)
	}
	restored := filepath.Join(restoreRoot, "restored")
	code, out, errs = aegisOffline(t, env, "restore", file, "--data", restored, "--master-key-file", masterFile)
	if code != 0 || !strings.Contains(out, "restored ") {
		t.Fatalf("aegis restore: %d %s %s", code, out, errs)
	}
	// A second restore onto it is refused: the directory is not empty.
	if code, _, errs := aegisOffline(t, env, "restore", file, "--data", restored, "--master-key-file", masterFile); code == 0 || !strings.Contains(errs, "not empty") {
		t.Errorf("restore onto a used directory: %d %s", code, errs)
	}

	again := startServerWith(t, restored, withMaster)
	defer again.close(t)
	st, got, _ := call(t, again.gateway, "GET", "/entries/"+created.ID+"/thumbnail", diaryKey.Key, nil)
	if st != 200 || !bytes.Equal(got, thumb) {
		t.Fatalf("the restored thumbnail: %d, %d bytes, want %d", st, len(got), len(thumb))
	}
	st, body, _ = call(t, again.gateway, "GET", "/entries/"+created.ID, diaryKey.Key, nil)
	if st != 200 || !strings.Contains(string(body), "Backup-Title-5c1f") {
		t.Fatalf("the restored entry: %d %s", st, body)
	}
	if o, _ := probe(t, again.gateway, pk.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != secretMarker {
		t.Errorf("the restored secret: %+v", o)
	}
	if o, _ := probe(t, again.gateway, pk.Key, "probe", "kv-get", map[string]any{"table": "allowed", "key": "marker"}); !o.OK || o.Value != kvMarker {
		t.Errorf("the restored table value: %+v", o)
	}
	if o, _ := probe(t, again.gateway, pk.Key, "probe", "obj-get", map[string]any{"key": "ok/marker.txt"}); !o.OK || o.Value != objMarker {
		t.Errorf("the restored object: %+v", o)
	}
	if code, out, errs := aegisCLI(t, again, "audit", "verify"); code != 0 {
		t.Errorf("aegis audit verify on the restored server: %d %s %s", code, out, errs)
	}
	// The authenticator came back with the rest: a dangerous change still
	// needs a code.
	if code, _, errs := aegisCLI(t, again, "backup", "--out", filepath.Join(dir, "again.backup")); code == 0 || !strings.Contains(errs, "--otp") {
		t.Errorf("the restored server took a backup without a code: %d %s", code, errs)
	}
	checkTravelDiary(t, again, diaryKey.Key)
}
