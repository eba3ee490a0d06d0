package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/vault"
)

func newKMS(t testing.TB) vault.KMS {
	t.Helper()
	key, err := NewBackupKey() // any 32 random bytes
	if err != nil {
		t.Fatal(err)
	}
	k, err := vault.NewLocalKMS(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const marker = "MARKER-plaintext-that-must-not-appear"

// sample writes a backup of two streams (one of several segments) and a
// file, sealed for master and, when set, backupKey.
func sample(t testing.TB, master vault.KMS, backupKey []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(context.Background(), &buf, WriterOptions{Master: master, BackupKey: backupKey, ServerVersion: "test",
		Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte(marker), (3<<20)/len(marker)) // 3 MiB: several segments
	for _, s := range []struct {
		name string
		data []byte
	}{{"KV_one", []byte(marker)}, {"OBJ_two", big}} {
		if err := w.BeginStream(jetstream.StreamSnapshot{Name: s.name, Config: json.RawMessage(`{"name":"` + s.name + `"}`),
			State: json.RawMessage(`{"messages":1}`), Messages: 1}); err != nil {
			t.Fatal(err)
		}
		for d := s.data; len(d) > 0; {
			n := min(len(d), 128<<10)
			if err := w.Chunk(d[:n]); err != nil {
				t.Fatal(err)
			}
			d = d[n:]
		}
		if err := w.EndStream(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddFile(File{Path: "keys/audit.key", Data: []byte(marker)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every record of a backup; the error is the first one.
func readAll(b []byte, keys Keys) (streams map[string][]byte, files map[string][]byte, sum Summary, err error) {
	r, err := Open(context.Background(), bytes.NewReader(b), keys)
	if err != nil {
		return nil, nil, sum, err
	}
	streams, files = map[string][]byte{}, map[string][]byte{}
	cur := ""
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return streams, files, sum, nil
		}
		if err != nil {
			return nil, nil, sum, err
		}
		switch {
		case rec.Stream != nil:
			cur = rec.Stream.Name
		case rec.Chunk != nil:
			streams[cur] = append(streams[cur], rec.Chunk...)
		case rec.File != nil:
			files[rec.File.Path] = rec.File.Data
		case rec.End != nil:
			sum = *rec.End
		}
	}
}

func TestRoundTrip(t *testing.T) {
	master := newKMS(t)
	bk, err := NewBackupKey()
	if err != nil {
		t.Fatal(err)
	}
	b := sample(t, master, bk)
	if bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte("KV_one")) {
		t.Fatal("the backup file holds plaintext")
	}
	for name, keys := range map[string]Keys{
		"master":            {Master: master},
		"backup key":        {BackupKey: bk},
		"wrong master, key": {Master: newKMS(t), BackupKey: bk},
	} {
		t.Run(name, func(t *testing.T) {
			streams, files, sum, err := readAll(b, keys)
			if err != nil {
				t.Fatal(err)
			}
			if string(streams["KV_one"]) != marker || len(streams["OBJ_two"]) != (3<<20)/len(marker)*len(marker) {
				t.Fatalf("streams differ: %d, %d bytes", len(streams["KV_one"]), len(streams["OBJ_two"]))
			}
			if string(files["keys/audit.key"]) != marker {
				t.Fatal("file differs")
			}
			if sum != (Summary{Streams: 2, Messages: 2, Files: 1}) {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	master := newKMS(t)
	bk, _ := NewBackupKey()
	other, _ := NewBackupKey()
	withKey := sample(t, master, bk)
	masterOnly := sample(t, master, nil)
	for name, c := range map[string]struct {
		file []byte
		keys Keys
	}{
		"other master":             {masterOnly, Keys{Master: newKMS(t)}},
		"no key":                   {masterOnly, Keys{}},
		"backup key, master only":  {masterOnly, Keys{BackupKey: bk}},
		"other backup key":         {withKey, Keys{BackupKey: other}},
		"other backup key, master": {withKey, Keys{BackupKey: other, Master: newKMS(t)}},
		"short backup key refused": {withKey, Keys{BackupKey: bk[:16], Master: newKMS(t)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := readAll(c.file, c.keys)
			if !errors.Is(err, ErrWrongKey) {
				if name == "short backup key refused" && err != nil {
					return
				}
				t.Fatalf("error %v, want ErrWrongKey", err)
			}
		})
	}
}

// TestFlippedByte: a byte changed anywhere, preamble, header or body, is
// refused, and no record after the change is ever returned unchecked.
func TestFlippedByte(t *testing.T) {
	master := newKMS(t)
	bk, _ := NewBackupKey()
	b := sample(t, master, bk)
	headLen := len(Magic) + 6 + int(uint32(b[len(Magic)+2])<<24|uint32(b[len(Magic)+3])<<16|uint32(b[len(Magic)+4])<<8|uint32(b[len(Magic)+5]))
	positions := []int{0, len(Magic), len(Magic) + 3, len(Magic) + 7, headLen - 2, headLen, headLen + 40,
		len(b) / 3, len(b) / 2, len(b) - 20, len(b) - 1}
	for i := 0; i < headLen; i += 7 { // every part of the header
		positions = append(positions, i)
	}
	for _, pos := range positions {
		for _, keys := range []Keys{{Master: master}, {BackupKey: bk}} {
			c := bytes.Clone(b)
			c[pos] ^= 0x20
			_, _, _, err := readAll(c, keys)
			if err == nil {
				t.Fatalf("flipped byte at %d of %d accepted", pos, len(b))
			}
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrWrongKey) && !strings.Contains(err.Error(), "format version") {
				t.Fatalf("flipped byte at %d: unexpected error %v", pos, err)
			}
		}
	}
}

// TestTruncated: a file cut anywhere, including at a segment boundary, is
// refused; so is one with bytes added.
func TestTruncated(t *testing.T) {
	master := newKMS(t)
	b := sample(t, master, nil)
	headLen := len(b) - (len(b) - 14)
	cuts := []int{0, 5, headLen, 100, len(b) / 2, len(b) - 1, len(b) - 17}
	// Segment boundaries of the body (1 MiB ciphertext segments).
	for off := 1 << 20; off < len(b); off += 1 << 20 {
		for _, d := range []int{-1, 0, 1} {
			cuts = append(cuts, off+d)
		}
	}
	for _, n := range cuts {
		if n < 0 || n >= len(b) {
			continue
		}
		_, _, _, err := readAll(b[:n], Keys{Master: master})
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("cut at %d of %d: error %v, want ErrDamaged", n, len(b), err)
		}
	}
	_, _, _, err := readAll(append(bytes.Clone(b), 0), Keys{Master: master})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("a byte added: error %v, want ErrDamaged", err)
	}
}

// TestWriterRefuses: the writer's own checks.
func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewWriter(context.Background(), &buf, WriterOptions{}); err == nil {
		t.Fatal("a backup without the master key")
	}
	if _, err := NewWriter(context.Background(), &buf, WriterOptions{Master: newKMS(t), BackupKey: []byte("short")}); err == nil {
		t.Fatal("a short backup key")
	}
	w, err := NewWriter(context.Background(), &buf, WriterOptions{Master: newKMS(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Chunk([]byte("x")); err == nil {
		t.Fatal("a chunk outside a stream")
	}
	if err := w.AddFile(File{Path: "../etc/passwd", Data: []byte("x")}); err == nil {
		t.Fatal("a file outside the list")
	}
}

// FuzzOpen feeds the decoder arbitrary files: header and body parsing
// never panic, never allocate past their limits, and nothing is accepted
// but a backup sealed with the key.
func FuzzOpen(f *testing.F) {
	master, err := vault.NewLocalKMS(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	bk := bytes.Repeat([]byte{9}, 32)
	var buf bytes.Buffer
	w, err := NewWriter(context.Background(), &buf, WriterOptions{Master: master, BackupKey: bk})
	if err != nil {
		f.Fatal(err)
	}
	_ = w.BeginStream(jetstream.StreamSnapshot{Name: "S", Config: json.RawMessage(`{}`), State: json.RawMessage(`{}`)})
	_ = w.Chunk([]byte("chunk"))
	_ = w.EndStream()
	_, _ = w.Close()
	valid := buf.Bytes()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(Magic + "\x00\x01\x00\x00\x00\x02{}"))
	f.Add([]byte(Magic + "\x00\x01\xff\xff\xff\xff"))
	f.Add([]byte(Magic + "\x00\x01\x00\x00\x00\x30" + `{"format":1,"id":"00","keys":[{"kind":"master"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, keys := range []Keys{{Master: master}, {BackupKey: bk}} {
			r, err := Open(context.Background(), bytes.NewReader(b), keys)
			if err != nil {
				continue
			}
			for range 1000 {
				_, err := r.Next()
				if errors.Is(err, io.EOF) {
					// Each fuzzing process seals its own valid file (a
					// random file key), so only its shape can be compared.
					if len(b) != len(valid) {
						t.Fatalf("a file of %d bytes was accepted; the sealed one has %d", len(b), len(valid))
					}
					break
				}
				if err != nil {
					break
				}
			}
		}
	})
}
