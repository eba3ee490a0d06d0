package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
)

func openNode(t *testing.T, dir string) *jetstream.Node {
	t.Helper()
	n, err := jetstream.Open(context.Background(), jetstream.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriteRestore: a backup of a real JetStream and a data directory's
// key files restores into a directory a node opens with the same data;
// a damaged copy or a used directory leaves nothing behind.
func TestWriteRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dataDir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "keys", "audit.key"), []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "unrelated.txt"), []byte("not carried"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := openNode(t, dataDir)
	defer n.Close(ctx)
	b, err := n.Bucket(ctx, "t_app_notes", jetstream.BucketOptions{History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "k", []byte(marker)); err != nil {
		t.Fatal(err)
	}
	o, err := n.ObjectStore(ctx, "o_app")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Put(ctx, "photo.bin", bytes.Repeat([]byte(marker), 50000)); err != nil {
		t.Fatal(err)
	}

	master := newKMS(t)
	var buf bytes.Buffer
	sum, err := Write(ctx, &buf, n, Options{WriterOptions: WriterOptions{Master: master}, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Streams != 2 || sum.Files != 1 || sum.Messages < 2 {
		t.Fatalf("summary %+v", sum)
	}
	if bytes.Contains(buf.Bytes(), []byte(marker)) {
		t.Fatal("plaintext in the backup")
	}

	root := t.TempDir()
	// Refused: damaged, wrong key, a used directory. Nothing is left.
	damagedCopy := bytes.Clone(buf.Bytes())
	damagedCopy[len(damagedCopy)-100] ^= 1
	if _, _, err := Restore(ctx, bytes.NewReader(damagedCopy), RestoreOptions{Keys: Keys{Master: master}, Dir: filepath.Join(root, "damaged")}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged: %v", err)
	}
	if _, _, err := Restore(ctx, bytes.NewReader(buf.Bytes()), RestoreOptions{Keys: Keys{Master: newKMS(t)}, Dir: filepath.Join(root, "wrong")}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	used := filepath.Join(root, "used")
	if err := os.MkdirAll(used, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(used, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Restore(ctx, bytes.NewReader(buf.Bytes()), RestoreOptions{Keys: Keys{Master: master}, Dir: used}); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("used directory: %v", err)
	}
	if left, _ := os.ReadDir(root); len(left) != 1 || left[0].Name() != "used" {
		t.Fatalf("refused restores left %v", left)
	}

	// An empty directory is fine, and is where the restore lands.
	dir := filepath.Join(root, "restored")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if _, got, err := Restore(ctx, bytes.NewReader(buf.Bytes()), RestoreOptions{Keys: Keys{Master: master}, Dir: dir,
		Progress: func(s string) { seen = append(seen, s) }}); err != nil || got != sum {
		t.Fatalf("restore: %+v %v", got, err)
	}
	if len(seen) != 2 {
		t.Errorf("progress saw %v", seen)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys", "audit.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit.key: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "unrelated.txt")); err == nil {
		t.Error("a file the backup does not carry was restored")
	}
	r := openNode(t, dir)
	defer r.Close(ctx)
	rb, err := r.Bucket(ctx, "t_app_notes", jetstream.BucketOptions{History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := rb.Get(ctx, "k"); err != nil || string(v) != marker {
		t.Fatalf("restored value %q %v", v, err)
	}
	ro, err := r.ObjectStore(ctx, "o_app")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ro.Get(ctx, "photo.bin"); err != nil || len(v) != 50000*len(marker) {
		t.Fatalf("restored object: %d bytes, %v", len(v), err)
	}
}
