package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Source is what a backup copies: the streams of a JetStream node.
type Source interface {
	StreamNames(ctx context.Context) ([]string, error)
	SnapshotStream(ctx context.Context, name string, begin func(jetstream.StreamSnapshot) error, chunk func([]byte) error) error
}

// Options of a backup.
type Options struct {
	WriterOptions
	// DataDir is the server's data directory; the files RestorableFiles
	// names are taken from it when they exist.
	DataDir string
}

// Write writes a backup of every stream of src and the data directory's
// key files to w. Each stream is a point in time of its own: the streams
// are taken one after the other while the server serves.
func Write(ctx context.Context, w io.Writer, src Source, opts Options) (Summary, error) {
	names, err := src.StreamNames(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("backup: %w", err)
	}
	bw, err := NewWriter(ctx, w, opts.WriterOptions)
	if err != nil {
		return Summary{}, fmt.Errorf("backup: %w", err)
	}
	for _, name := range names {
		err := src.SnapshotStream(ctx, name, bw.BeginStream, bw.Chunk)
		if errors.Is(err, aegis.ErrNotFound) && bw.inside == "" {
			continue // deleted since it was listed (an app deleted meanwhile)
		}
		if err != nil {
			return Summary{}, fmt.Errorf("backup: %w", err)
		}
		if err := bw.EndStream(); err != nil {
			return Summary{}, fmt.Errorf("backup: %w", err)
		}
	}
	if opts.DataDir != "" {
		for _, p := range RestorableFiles() {
			data, err := os.ReadFile(filepath.Join(opts.DataDir, filepath.FromSlash(p)))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return Summary{}, fmt.Errorf("backup: read %s: %w", p, err)
			}
			err = bw.AddFile(File{Path: p, Data: data})
			clear(data)
			if err != nil {
				return Summary{}, fmt.Errorf("backup: %w", err)
			}
		}
	}
	sum, err := bw.Close()
	if err != nil {
		return sum, fmt.Errorf("backup: %w", err)
	}
	return sum, nil
}

// RestoreOptions say where a backup is restored and with what keys.
type RestoreOptions struct {
	Keys Keys
	// Dir is the data directory to build: it must not exist or be empty.
	Dir    string
	Logger *slog.Logger
	// Progress, when set, is told of each stream as it is restored.
	Progress func(stream string)
}

// Restore builds a data directory from the backup in r, offline: an
// embedded JetStream in a temporary directory next to Dir receives every
// stream, and the directory is renamed to Dir only once the whole file
// has authenticated to its last byte. On any error Dir is left as it was
// and the temporary directory is removed.
func Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (Header, Summary, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Clean(opts.Dir)
	if err := checkTarget(dir); err != nil {
		return Header{}, Summary{}, err
	}
	br, err := Open(ctx, r, opts.Keys)
	if err != nil {
		return Header{}, Summary{}, fmt.Errorf("restore: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return Header{}, Summary{}, fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restore-")
	if err != nil {
		return Header{}, Summary{}, fmt.Errorf("restore: %w", err)
	}
	sum, err := restoreInto(ctx, br, tmp, log, opts.Progress)
	if err != nil {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			log.Warn("restore: temporary directory not removed", logkey.File, tmp, logkey.Error, rerr)
		}
		return br.Header(), sum, fmt.Errorf("restore: %w", err)
	}
	if err := moveInto(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return br.Header(), sum, fmt.Errorf("restore: %w", err)
	}
	return br.Header(), sum, nil
}

// checkTarget refuses a data directory that exists with anything in it.
func checkTarget(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("restore: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("restore: %s is not empty: restore into a new directory: %w", dir, aegis.ErrConflict)
	}
	return nil
}

// moveInto renames tmp to dir, which is absent or an empty directory.
func moveInto(tmp, dir string) error {
	err := os.Rename(tmp, dir)
	if err == nil {
		return nil
	}
	// Some systems do not rename onto an empty directory; remove it (only
	// if still empty) and try once more.
	if rerr := os.Remove(dir); rerr != nil {
		return fmt.Errorf("move the restored directory into place: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move the restored directory into place: %w", err)
	}
	return nil
}

func restoreInto(ctx context.Context, br *Reader, tmp string, log *slog.Logger, progress func(string)) (sum Summary, err error) {
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: tmp, Logger: log})
	if err != nil {
		return sum, err
	}
	defer func() {
		if cerr := node.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var cur *jetstream.StreamRestore
	defer func() {
		if cur != nil {
			cur.Abort()
		}
	}()
	var got Summary
	for {
		rec, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return got, err
		}
		switch {
		case rec.Stream != nil:
			if progress != nil {
				progress(rec.Stream.Name)
			}
			if cur, err = node.RestoreStream(ctx, *rec.Stream); err != nil {
				return got, err
			}
			got.Streams++
		case rec.Chunk != nil:
			if err := cur.Write(ctx, rec.Chunk); err != nil {
				return got, err
			}
		case rec.StreamEnd:
			err := cur.Finish(ctx)
			cur = nil
			if err != nil {
				return got, err
			}
		case rec.File != nil:
			if err := writeFile(tmp, *rec.File); err != nil {
				return got, err
			}
			got.Files++
		case rec.End != nil:
			if rec.End.Streams != got.Streams || rec.End.Files != got.Files {
				return got, damaged("the summary does not match the records")
			}
			sum = *rec.End
		}
	}
	return sum, nil
}

// writeFile writes a carried file under dir, owner-only as the server
// keeps it.
func writeFile(dir string, f File) error {
	if !restorable(f.Path) {
		return damaged("file %q", f.Path)
	}
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if _, err := fh.Write(f.Data); err != nil {
		_ = fh.Close()
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := fh.Sync(); err != nil {
		_ = fh.Close()
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return fh.Close()
}
