package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/transittest"
	"github.com/aegis-platform/aegis/internal/vault"
)

// aegisCLIStdin runs the real CLI in-process against in, stdin piped in.
func aegisCLIStdin(t *testing.T, in *instance, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken()}
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// The vault end to end, on a real server with its own master key: secrets
// set through the CLI and read by a granted function, refused to another;
// a deploy granting a missing secret refused naming it; a rotation with an
// overlap; no value on disk in the data directory; and a server started
// with another master key, or a missing one, stops with a clear message.
func TestVault(t *testing.T) {
	keyDir := t.TempDir() // the user's config directory: outside the data directory
	dataDir := t.TempDir()
	in := startServerWith(t, dataDir, func(c *server.Config) { c.MasterKey.ConfigDir = keyDir })
	keyFile := filepath.Join(keyDir, "aegis", "master.key")
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the default master key file: %v %v", st, err)
	}
	if lines := in.logs.Messages("vault master key created: keep a copy outside this machine; without it the secrets cannot be read"); len(lines) != 1 {
		t.Errorf("want one line naming the new key's file, got %d", len(lines))
	}

	const (
		marker       = "vault-marker-7d1e5a0c93b2"
		kvMarker     = "kv-marker-5b0e9d2c41a7"
		objectMarker = "object-marker-c83f17e6a2d0"
		eventMarker  = "event-marker-94d1b7e0c25f"
	)
	// A deploy granting secrets the vault does not hold is refused,
	// naming the first.
	if _, err := deployWith(in, "testdata/secrets.yaml", probeModule(t)); err == nil ||
		!strings.Contains(err.Error(), `granted secret "WEBHOOK_TOKEN", which app "vaulted" does not have`) {
		t.Fatalf("deploy granting a missing secret: %v", err)
	}
	if code, _, errs := aegisCLIStdin(t, in, marker+"\n", "secrets", "set", "vaulted", "WEBHOOK_TOKEN"); code != 0 {
		t.Fatalf("aegis secrets set: %d %s", code, errs)
	}
	if code, _, errs := aegisCLIStdin(t, in, "another-value", "secrets", "set", "vaulted", "NOT_SET"); code != 0 {
		t.Fatalf("aegis secrets set: %d %s", code, errs)
	}
	if code, _, errs := aegisCLIStdin(t, in, "", "secrets", "set", "vaulted", "EMPTY"); code != 2 || !strings.Contains(errs, "empty") {
		t.Errorf("an empty value: %d %s", code, errs)
	}
	deployProbe(t, in, "testdata/secrets.yaml")
	k, err := in.admin.CreateKey(context.Background(), "vault-e2e")
	if err != nil {
		t.Fatal(err)
	}
	// stdin's trailing newline is not part of the value.
	if o, _ := probe(t, in.gateway, k.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != marker {
		t.Fatalf("granted read: %+v", o)
	}
	if o, _ := probe(t, in.gateway, k.Key, "stranger", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.Denied || o.Value != "" {
		t.Fatalf("ungranted read: %+v", o)
	}

	// Rotation: the new value is current at once; the previous version's
	// end of overlap is listed; no value is.
	if code, out, errs := aegisCLIStdin(t, in, marker+"-v2", "secrets", "rotate", "vaulted", "WEBHOOK_TOKEN", "--overlap", "1h"); code != 0 ||
		!strings.Contains(out, "version 2") {
		t.Fatalf("aegis secrets rotate: %d %s %s", code, out, errs)
	}
	if o, _ := probe(t, in.gateway, k.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != marker+"-v2" {
		t.Fatalf("read after rotation: %+v", o)
	}
	code, out, errs := aegisCLI(t, in, "secrets", "list", "vaulted", "-o", "json")
	if code != 0 || strings.Contains(out, marker) {
		t.Fatalf("aegis secrets list: %d %s %s", code, out, errs)
	}
	var listed []struct {
		Name     string
		Version  int
		Versions []struct {
			Version   int
			ExpiresAt *time.Time `json:"expires_at"`
		}
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 || listed[1].Name != "WEBHOOK_TOKEN" || listed[1].Version != 2 {
		t.Fatalf("list: %v %s", err, out)
	}
	if v := listed[1].Versions; len(v) != 2 || v[0].ExpiresAt == nil || time.Until(*v[0].ExpiresAt) < 50*time.Minute {
		t.Errorf("the previous version's overlap: %+v", v)
	}
	// What a function stores is sealed with the app's data key.
	if o, _ := probe(t, in.gateway, k.Key, "reader", "kv-put", map[string]any{"table": "notes", "key": "n1", "value": kvMarker}); !o.OK {
		t.Fatalf("kv put: %+v", o)
	}
	if o, _ := probe(t, in.gateway, k.Key, "reader", "obj-put", map[string]any{"key": "notes/n1", "value": objectMarker}); !o.OK {
		t.Fatalf("object put: %+v", o)
	}
	// So is what it publishes, in the event stream.
	if o, _ := probe(t, in.gateway, k.Key, "reader", "publish", map[string]any{"topic": "notes.saved", "value": eventMarker}); !o.OK {
		t.Fatalf("publish: %+v", o)
	}
	readStored := func(in *instance) {
		t.Helper()
		if o, _ := probe(t, in.gateway, k.Key, "reader", "kv-get", map[string]any{"table": "notes", "key": "n1"}); !o.OK || o.Value != kvMarker {
			t.Fatalf("kv get: %+v", o)
		}
		if o, _ := probe(t, in.gateway, k.Key, "reader", "obj-get", map[string]any{"key": "notes/n1"}); !o.OK || o.Value != objectMarker {
			t.Fatalf("object get: %+v", o)
		}
	}
	readStored(in)
	// A new data key seals from now on; what the old one sealed still opens.
	if code, out, errs := aegisCLI(t, in, "vault", "rotate-data-key", "vaulted"); code != 0 || !strings.Contains(out, "holds 2 keys") {
		t.Fatalf("aegis vault rotate-data-key: %d %s %s", code, out, errs)
	}
	readStored(in)
	if o, _ := probe(t, in.gateway, k.Key, "reader", "kv-put", map[string]any{"table": "notes", "key": "n2", "value": kvMarker}); !o.OK {
		t.Fatalf("kv put after the data key's rotation: %+v", o)
	}
	if o, _ := probe(t, in.gateway, k.Key, "reader", "kv-get", map[string]any{"table": "notes", "key": "n2"}); !o.OK || o.Value != kvMarker {
		t.Fatalf("kv get after the data key's rotation: %+v", o)
	}
	if code, _, errs := aegisCLI(t, in, "vault", "rotate-data-key", "nothing-stored"); code != 1 || !strings.Contains(errs, "has stored nothing yet") {
		t.Errorf("rotate-data-key of an app without data: %d %s", code, errs)
	}
	// The largest value a function may store still fits once sealed.
	big := strings.Repeat("b", 1<<20)
	if o, _ := probe(t, in.gateway, k.Key, "reader", "kv-put", map[string]any{"table": "notes", "key": "big", "value": big}); !o.OK {
		t.Fatalf("kv put of 1 MiB: %+v", o.Error)
	}
	if o, _ := probe(t, in.gateway, k.Key, "reader", "kv-get", map[string]any{"table": "notes", "key": "big"}); !o.OK || o.Value != big {
		t.Fatalf("kv get of 1 MiB: %d bytes, %s", len(o.Value), o.Error)
	}
	// The master key rotated while the server serves: reads keep working,
	// the old key is kept beside the new, and the change is in the audit log.
	oldKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errs := aegisCLI(t, in, "vault", "rotate-master"); code != 0 || !strings.Contains(out, "data keys re-wrapped") {
		t.Fatalf("aegis vault rotate-master: %d %s %s", code, out, errs)
	}
	if prev, err := os.ReadFile(keyFile + ".previous"); err != nil || !bytes.Equal(prev, oldKey) {
		t.Errorf("the old key is not kept as .previous: %v", err)
	}
	if now, _ := os.ReadFile(keyFile); bytes.Equal(now, oldKey) {
		t.Error("the key file still holds the old key")
	}
	if o, _ := probe(t, in.gateway, k.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != marker+"-v2" {
		t.Fatalf("read after the master key's rotation: %+v", o)
	}
	readStored(in)
	if code, out, _ := aegisCLI(t, in, "audit", "list", "-o", "json"); code != 0 || !strings.Contains(out, "vault.rotate_master") ||
		!strings.Contains(out, "vault.rotate_data_key") ||
		!strings.Contains(out, "secret.set") || strings.Contains(out, marker) {
		t.Errorf("the audit log does not record the vault's changes, or holds the value: %d", code)
	}
	if code, _, errs := aegisCLI(t, in, "secrets", "rm", "vaulted", "NOT_SET"); code != 0 {
		t.Errorf("aegis secrets rm: %d %s", code, errs)
	}
	if code, _, errs := aegisCLI(t, in, "secrets", "rm", "vaulted", "NOT_SET"); code != 1 || !strings.Contains(errs, "no secret named") {
		t.Errorf("aegis secrets rm of a removed secret: %d %s", code, errs)
	}
	in.close(t)

	// Nothing under the data directory holds the secret, the table value or
	// the object, in any of the forms a log line or a store could carry it.
	var forms [][]byte
	for _, m := range []string{marker, kvMarker, objectMarker, eventMarker} {
		forms = append(forms, []byte(m), []byte(base64.StdEncoding.EncodeToString([]byte(m))), []byte(hex.EncodeToString([]byte(m))))
	}
	files := 0
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, f := range forms {
			if bytes.Contains(b, f) {
				t.Errorf("%s holds a marker in the clear (%q)", path, f)
			}
		}
		return nil
	})
	if err != nil || files < 5 {
		t.Fatalf("walked %d files: %v", files, err)
	}

	// Another master key does not open this vault: the start fails and
	// says so, and nothing falls back to plaintext.
	other := filepath.Join(t.TempDir(), "other.key")
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	if err := os.WriteFile(other, []byte(base64.StdEncoding.EncodeToString(raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	oldFile := filepath.Join(t.TempDir(), "old.key")
	if err := os.WriteFile(oldFile, oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, want string
	}{
		{other, "does not open this data directory's vault"},
		{oldFile, "does not open this data directory's vault"}, // the key before the rotation
		{filepath.Join(t.TempDir(), "missing.key"), "missing.key"},
	} {
		srv, err := server.New(server.Config{DataDir: dataDir, CacheDir: compileCache, HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			MasterKey: vault.MasterKeyOptions{File: c.file}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = srv.Start(ctx)
		cancel()
		_ = srv.Close(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("start with master key file %s: %v, want an error naming %q", filepath.Base(c.file), err, c.want)
		}
	}
	// The right key opens it again.
	again := startServerWith(t, dataDir, func(c *server.Config) { c.MasterKey.ConfigDir = keyDir })
	defer again.close(t)
	if o, _ := probe(t, again.gateway, k.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != marker+"-v2" {
		t.Fatalf("read after a restart with the right key: %+v", o)
	}
	readStored(again)
}

// The vault on HashiCorp Vault's Transit engine (a stand-in speaking its
// HTTP API on loopback): secrets set and read as with a master key, the
// key-encryption key never on this machine; rotate-master says to rotate
// the key in Vault; a Transit that refuses the token stops the start.
func TestVaultOnTransit(t *testing.T) {
	transit := transittest.Start(t, "transit-token")
	dataDir := t.TempDir()
	tc := &vault.TransitConfig{Address: transit.URL(), Token: "transit-token", Key: transittest.DerivedKey, Derived: true, MaxRetries: -1}
	unused := t.TempDir()
	in := startServerWith(t, dataDir, func(c *server.Config) {
		c.Transit = tc
		c.MasterKey.ConfigDir = unused
	})
	if entries, _ := os.ReadDir(unused); len(entries) != 0 {
		t.Errorf("a master key file was made beside Transit: %v", entries)
	}
	if code, _, errs := aegisCLIStdin(t, in, "transit-held-value", "secrets", "set", "vaulted", "WEBHOOK_TOKEN"); code != 0 {
		t.Fatalf("aegis secrets set: %d %s", code, errs)
	}
	if code, _, errs := aegisCLIStdin(t, in, "x-value", "secrets", "set", "vaulted", "NOT_SET"); code != 0 {
		t.Fatalf("aegis secrets set: %d %s", code, errs)
	}
	if transit.Calls() == 0 {
		t.Fatal("the vault never asked Transit")
	}
	deployProbe(t, in, "testdata/secrets.yaml")
	k, err := in.admin.CreateKey(context.Background(), "transit-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := probe(t, in.gateway, k.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != "transit-held-value" {
		t.Fatalf("granted read through Transit: %+v", o)
	}
	if code, _, errs := aegisCLI(t, in, "vault", "rotate-master"); code != 1 || !strings.Contains(errs, "rotate it there") {
		t.Errorf("rotate-master on Transit: %d %s", code, errs)
	}
	// A backup is sealed for the Transit key, and opens with it.
	backupFile := filepath.Join(t.TempDir(), "transit.backup")
	if code, _, errs := aegisCLI(t, in, "backup", "--out", backupFile); code != 0 {
		t.Fatalf("aegis backup on Transit: %d %s", code, errs)
	}
	in.close(t)
	t.Setenv("VAULT_ADDR", transit.URL()) // as aegis server and restore read them
	t.Setenv("VAULT_TOKEN", "transit-token")
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errs := aegisOffline(t, nil, "restore", backupFile, "--data", restored,
		"--vault-transit-key", transittest.DerivedKey, "--vault-transit-derived"); code != 0 {
		t.Fatalf("aegis restore with the Transit key: %d %s %s", code, out, errs)
	}
	again := startServerWith(t, restored, func(c *server.Config) { c.Transit, c.MasterKey.ConfigDir = tc, unused })
	if o, _ := probe(t, again.gateway, k.Key, "reader", "secret", map[string]any{"key": "WEBHOOK_TOKEN"}); !o.OK || o.Value != "transit-held-value" {
		t.Errorf("the secret on the server restored from a Transit backup: %+v", o)
	}
	again.close(t)
	t.Setenv("VAULT_TOKEN", "wrong-token")
	if code, _, errs := aegisOffline(t, nil, "restore", backupFile, "--data", filepath.Join(t.TempDir(), "refused"),
		"--vault-transit-key", transittest.DerivedKey, "--vault-transit-derived"); code == 0 || !strings.Contains(errs, "nothing was restored") {
		t.Errorf("restore with a token Transit refuses: %d %s", code, errs)
	}

	bad := *tc
	bad.Token = "wrong-token"
	srv, err := server.New(server.Config{DataDir: dataDir, CacheDir: compileCache, HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Transit: &bad})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = srv.Start(ctx)
	_ = srv.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vault") || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("start with a token Transit refuses: %v", err)
	}
	t.Logf("start with a token Transit refuses: %v", err)
}
