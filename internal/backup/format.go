// Package backup writes and reads the platform's backup file
// (docs/backup.md): every JetStream stream the platform uses, copied whole
// with its sequences and consumers (jetstream.SnapshotStream), and the key
// files of the data directory, in one authenticated, encrypted stream.
//
// The file is a short preamble, a JSON header (format version, creation
// time, server version, the file key wrapped by each key that may open the
// backup) and the body sealed with Tink's streaming AEAD
// (AES256-GCM-HKDF, 1 MiB segments) under a fresh random file key, with
// the preamble and the header as associated data: a changed byte anywhere
// is refused, and so is a file cut short, even at a segment boundary. The
// file key is wrapped by the vault's key-encryption key and, when the
// operator gives one, by a backup key they keep; either opens the backup.
//
// Nothing of a backup is written in plaintext: the server seals it as it
// is produced, and a restore unseals it segment by segment, each one
// checked before any of its bytes is used. Every size read from a file is
// bounded before anything is allocated for it.
package backup

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	streaming "github.com/tink-crypto/tink-go/v2/streamingaead/subtle"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/vault"
)

// Magic opens every backup file.
const Magic = "AEGISBAK"

// FormatVersion is the version of the file format this package writes
// and the only one it reads.
const FormatVersion = 1

// KeySize is the size in bytes of a backup key and of a file key.
const KeySize = 32

// Limits on what a file may declare, checked before anything is read or
// allocated for it.
const (
	maxHeader     = 64 << 10
	maxKeys       = 4
	maxWrapped    = 4 << 10
	maxStreamMeta = 1 << 20
	maxFileData   = 64 << 10
	maxSummary    = 4 << 10
	// segmentSize is the streaming AEAD's ciphertext segment: each one is
	// checked before any of its plaintext is returned.
	segmentSize = 1 << 20
)

var (
	// ErrDamaged is a file that is not a backup, or one that was modified
	// or cut short: nothing of it may be used.
	ErrDamaged = errors.New("the backup is damaged, modified or incomplete")
	// ErrWrongKey is a backup that none of the given keys opens.
	ErrWrongKey = errors.New("no key given opens this backup")
)

// Key kinds in the header.
const (
	KindMaster    = "master"     // the vault's key-encryption key (local master key or Transit)
	KindBackupKey = "backup-key" // a 32-byte key the operator keeps (--backup-key)
)

// Header is the file's header: authenticated (associated data of the
// body), not encrypted. It holds no secret: the file key only wrapped.
type Header struct {
	Format        int          `json:"format"`
	ID            string       `json:"id"` // 16 random bytes, hex: binds each wrapped key to this file
	Created       time.Time    `json:"created"`
	ServerVersion string       `json:"server_version,omitempty"`
	Keys          []WrappedKey `json:"keys"`
}

// WrappedKey is the file key sealed by one key.
type WrappedKey struct {
	Kind string `json:"kind"`
	// KeyID names a backup key (the first 8 bytes of its SHA-256, hex), so
	// a wrong one is told apart from a damaged file.
	KeyID   string `json:"key_id,omitempty"`
	Wrapped []byte `json:"wrapped"`
}

// Keys are what may open a backup: the vault's key-encryption key, a
// backup key, or both (tried in that order).
type Keys struct {
	Master    vault.KMS
	BackupKey []byte
}

// NewBackupKey returns a fresh random backup key.
func NewBackupKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("new backup key: %w", err)
	}
	return k, nil
}

// BackupKeyID is the id the header gives a backup key: not secret (a hash
// of 32 random bytes), enough to say "another backup key".
func BackupKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// wrapAD is the associated data of a wrapped file key: the kind of key
// and the file's id, so a wrapped key cannot be moved to another file or
// passed off as the other kind.
func wrapAD(kind, id string) []byte {
	return []byte("aegis backup file key\x00" + kind + "\x00" + id)
}

func backupKeyAEAD(key []byte) (*subtle.AESGCM, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("backup key: %d bytes, want %d: %w", len(key), KeySize, aegis.ErrInvalidArgument)
	}
	return subtle.NewAESGCM(key)
}

func newStreamingAEAD(fileKey []byte) (*streaming.AESGCMHKDF, error) {
	return streaming.NewAESGCMHKDF(fileKey, "SHA256", KeySize, segmentSize, 0)
}

// preamble is Magic, the format version and the header's length.
func preamble(headerLen int) []byte {
	b := make([]byte, 0, len(Magic)+6)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, FormatVersion)
	return binary.BigEndian.AppendUint32(b, uint32(headerLen))
}

// Record kinds of the body. Each record is its kind, a 4-byte big-endian
// length and that many bytes.
const (
	recStream    byte = 'S' // a stream begins: JSON streamMeta
	recChunk     byte = 'C' // a piece of the stream's snapshot
	recStreamEnd byte = 'E' // the stream's snapshot is complete; empty
	recFile      byte = 'F' // a file of the data directory: JSON File
	recEnd       byte = 'Z' // the last record: JSON Summary
)

type streamMeta struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

// File is a file of the data directory carried in a backup, by its path
// relative to the directory (slash-separated).
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// Summary is what a backup holds; it is also its last record, so a
// restore knows the body ended where the writer ended it.
type Summary struct {
	Streams  int    `json:"streams"`
	Messages uint64 `json:"messages"`
	Files    int    `json:"files"`
}

// Writer seals a backup as it is written.
type Writer struct {
	enc     io.WriteCloser
	summary Summary
	inside  string // the stream being written, "" between streams
	closed  bool
}

// WriterOptions are what a new backup file is sealed for.
type WriterOptions struct {
	// Master is the vault's key-encryption key; required.
	Master vault.KMS
	// BackupKey, when set, also opens the backup (32 bytes).
	BackupKey     []byte
	ServerVersion string
	Now           time.Time
}

// NewWriter writes the preamble and header to w and returns the writer of
// the sealed body. Close must be called to seal its end.
func NewWriter(ctx context.Context, w io.Writer, opts WriterOptions) (*Writer, error) {
	if opts.Master == nil {
		return nil, fmt.Errorf("new backup: the master key is required: %w", aegis.ErrInvalidArgument)
	}
	fileKey := make([]byte, KeySize)
	if _, err := rand.Read(fileKey); err != nil {
		return nil, fmt.Errorf("new backup: file key: %w", err)
	}
	defer clear(fileKey)
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("new backup: id: %w", err)
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	h := Header{Format: FormatVersion, ID: hex.EncodeToString(id[:]), Created: opts.Now.UTC().Truncate(time.Second),
		ServerVersion: opts.ServerVersion}
	wrapped, err := opts.Master.Encrypt(ctx, fileKey, wrapAD(KindMaster, h.ID))
	if err != nil {
		return nil, fmt.Errorf("new backup: wrap the file key with the master key: %w", err)
	}
	h.Keys = append(h.Keys, WrappedKey{Kind: KindMaster, Wrapped: wrapped})
	if opts.BackupKey != nil {
		a, err := backupKeyAEAD(opts.BackupKey)
		if err != nil {
			return nil, fmt.Errorf("new backup: %w", err)
		}
		wrapped, err := a.Encrypt(fileKey, wrapAD(KindBackupKey, h.ID))
		if err != nil {
			return nil, fmt.Errorf("new backup: wrap the file key with the backup key: %w", err)
		}
		h.Keys = append(h.Keys, WrappedKey{Kind: KindBackupKey, KeyID: BackupKeyID(opts.BackupKey), Wrapped: wrapped})
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("new backup: header: %w", err)
	}
	if len(hb) > maxHeader {
		return nil, fmt.Errorf("new backup: header of %d bytes: %w", len(hb), aegis.ErrLimitExceeded)
	}
	head := append(preamble(len(hb)), hb...)
	if _, err := w.Write(head); err != nil {
		return nil, fmt.Errorf("write backup header: %w", err)
	}
	s, err := newStreamingAEAD(fileKey)
	if err != nil {
		return nil, fmt.Errorf("new backup: %w", err)
	}
	enc, err := s.NewEncryptingWriter(w, head)
	if err != nil {
		return nil, fmt.Errorf("new backup: %w", err)
	}
	return &Writer{enc: enc}, nil
}

func (w *Writer) record(kind byte, payload []byte) error {
	if w.closed {
		return fmt.Errorf("write backup: closed: %w", aegis.ErrInvalidArgument)
	}
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.enc.Write(hdr[:]); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	if _, err := w.enc.Write(payload); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	return nil
}

// BeginStream starts a stream's snapshot.
func (w *Writer) BeginStream(s jetstream.StreamSnapshot) error {
	if w.inside != "" {
		return fmt.Errorf("write backup: stream %s begins inside %s: %w", s.Name, w.inside, aegis.ErrInvalidArgument)
	}
	b, err := json.Marshal(streamMeta{Name: s.Name, Config: s.Config, State: s.State})
	if err != nil {
		return fmt.Errorf("write backup: stream %s: %w", s.Name, err)
	}
	if len(b) > maxStreamMeta {
		return fmt.Errorf("write backup: stream %s: description of %d bytes: %w", s.Name, len(b), aegis.ErrLimitExceeded)
	}
	w.inside = s.Name
	w.summary.Streams++
	w.summary.Messages += s.Messages
	return w.record(recStream, b)
}

// Chunk adds a piece of the current stream's snapshot.
func (w *Writer) Chunk(b []byte) error {
	if w.inside == "" {
		return fmt.Errorf("write backup: chunk outside a stream: %w", aegis.ErrInvalidArgument)
	}
	if len(b) == 0 || len(b) > jetstream.MaxSnapshotChunk {
		return fmt.Errorf("write backup: chunk of %d bytes: %w", len(b), aegis.ErrInvalidArgument)
	}
	return w.record(recChunk, b)
}

// EndStream ends the current stream's snapshot.
func (w *Writer) EndStream() error {
	if w.inside == "" {
		return fmt.Errorf("write backup: no stream to end: %w", aegis.ErrInvalidArgument)
	}
	w.inside = ""
	return w.record(recStreamEnd, nil)
}

// AddFile adds a file of the data directory.
func (w *Writer) AddFile(f File) error {
	if w.inside != "" {
		return fmt.Errorf("write backup: file inside stream %s: %w", w.inside, aegis.ErrInvalidArgument)
	}
	if !restorable(f.Path) || len(f.Data) > maxFileData {
		return fmt.Errorf("write backup: file %q: %w", f.Path, aegis.ErrInvalidArgument)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("write backup: file %s: %w", f.Path, err)
	}
	w.summary.Files++
	return w.record(recFile, b)
}

// Close writes the summary and seals the end of the body. A backup not
// closed is refused by every reader.
func (w *Writer) Close() (Summary, error) {
	if w.closed {
		return w.summary, nil
	}
	if w.inside != "" {
		return w.summary, fmt.Errorf("write backup: stream %s not ended: %w", w.inside, aegis.ErrInvalidArgument)
	}
	b, err := json.Marshal(w.summary)
	if err != nil {
		return w.summary, fmt.Errorf("write backup: summary: %w", err)
	}
	if err := w.record(recEnd, b); err != nil {
		return w.summary, err
	}
	w.closed = true
	if err := w.enc.Close(); err != nil {
		return w.summary, fmt.Errorf("write backup: seal: %w", err)
	}
	return w.summary, nil
}

// restorable lists the files of a data directory a backup carries; a
// restore writes no other path.
func restorable(path string) bool {
	switch path {
	case "admin.token", "keys/audit.key", "keys/events.key":
		return true
	}
	return false
}

// RestorableFiles are the files of a data directory a backup carries, when
// they exist: the bootstrap admin token and the audit and event signing
// keys.
func RestorableFiles() []string {
	return []string{"admin.token", "keys/audit.key", "keys/events.key"}
}

// damaged wraps a reason as ErrDamaged.
func damaged(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, args...))
}

// readHeader reads and checks the preamble and header and returns them
// with the header's bytes (for the body's associated data).
func readHeader(r io.Reader) (Header, []byte, error) {
	pre := make([]byte, len(Magic)+6)
	if _, err := io.ReadFull(r, pre); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, nil, damaged("not an aegis backup (too short)")
		}
		return Header{}, nil, fmt.Errorf("read backup: %w", err)
	}
	if !bytes.Equal(pre[:len(Magic)], []byte(Magic)) {
		return Header{}, nil, damaged("not an aegis backup")
	}
	if v := binary.BigEndian.Uint16(pre[len(Magic):]); v != FormatVersion {
		return Header{}, nil, fmt.Errorf("read backup: format version %d, this aegis reads %d: %w", v, FormatVersion, aegis.ErrInvalidArgument)
	}
	n := binary.BigEndian.Uint32(pre[len(Magic)+2:])
	if n == 0 || n > maxHeader {
		return Header{}, nil, damaged("header of %d bytes", n)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(r, hb); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, nil, damaged("header cut short")
		}
		return Header{}, nil, fmt.Errorf("read backup: %w", err)
	}
	var h Header
	if err := strictjson.Unmarshal(hb, &h); err != nil {
		return Header{}, nil, damaged("header is not valid")
	}
	if h.Format != FormatVersion || len(h.ID) != 32 || len(h.Keys) == 0 || len(h.Keys) > maxKeys {
		return Header{}, nil, damaged("header is not valid")
	}
	for _, k := range h.Keys {
		if len(k.Wrapped) == 0 || len(k.Wrapped) > maxWrapped {
			return Header{}, nil, damaged("header is not valid")
		}
	}
	return h, append(pre, hb...), nil
}

// unwrap finds the file key with the first of keys that opens it.
func unwrap(ctx context.Context, h Header, keys Keys) ([]byte, error) {
	var tried []string
	for _, k := range h.Keys {
		switch {
		case k.Kind == KindMaster && keys.Master != nil:
			fk, err := keys.Master.Decrypt(ctx, k.Wrapped, wrapAD(KindMaster, h.ID))
			if err == nil && len(fk) == KeySize {
				return fk, nil
			}
			tried = append(tried, "the master key given does not open it (another master key, one rotated since, or a modified header)")
		case k.Kind == KindBackupKey && keys.BackupKey != nil:
			if k.KeyID != BackupKeyID(keys.BackupKey) {
				tried = append(tried, "it was made for another backup key")
				continue
			}
			a, err := backupKeyAEAD(keys.BackupKey)
			if err != nil {
				return nil, err
			}
			fk, err := a.Decrypt(k.Wrapped, wrapAD(KindBackupKey, h.ID))
			if err == nil && len(fk) == KeySize {
				return fk, nil
			}
			tried = append(tried, "the backup key does not open it (a modified header)")
		}
	}
	if len(tried) == 0 {
		has := "only the master key"
		if len(h.Keys) > 1 {
			has = "the master key or a backup key"
		}
		return nil, fmt.Errorf("%w: it opens with %s", ErrWrongKey, has)
	}
	return nil, fmt.Errorf("%w: %s", ErrWrongKey, joinReasons(tried))
}

func joinReasons(r []string) string {
	var b bytes.Buffer
	for i, s := range r {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Reader reads a backup's records, each checked before it is returned.
type Reader struct {
	h      Header
	src    *errReader
	body   io.Reader
	inside string
	ended  bool
	buf    []byte
}

// errReader remembers the error of the file itself, so a failure to read
// is not reported as a damaged backup.
type errReader struct {
	r   io.Reader
	err error
	eof bool
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		e.eof = true
	case err != nil:
		e.err = err
	}
	return n, err
}

// Open reads the header of the backup in r and finds its file key with
// keys. A file that is not a backup is ErrDamaged; one no key opens,
// ErrWrongKey.
func Open(ctx context.Context, r io.Reader, keys Keys) (*Reader, error) {
	src := &errReader{r: r}
	h, head, err := readHeader(src)
	if err != nil {
		return nil, err
	}
	fk, err := unwrap(ctx, h, keys)
	if err != nil {
		return nil, err
	}
	defer clear(fk)
	s, err := newStreamingAEAD(fk)
	if err != nil {
		return nil, fmt.Errorf("open backup: %w", err)
	}
	br := &Reader{h: h, src: src}
	if br.body, err = s.NewDecryptingReader(src, head); err != nil {
		return nil, br.bodyErr(err) // it reads the body's own header
	}
	return br, nil
}

// Header is the backup's header. It is authenticated only once the body
// has been read: a caller must not act on it before Next returns io.EOF.
func (r *Reader) Header() Header { return r.h }

// Record is one record of the body: exactly one of its fields is set.
type Record struct {
	// Stream begins a stream's snapshot (Config and State; no numbers).
	Stream *jetstream.StreamSnapshot
	// Chunk is a piece of the current stream's snapshot; valid until the
	// next call of Next.
	Chunk []byte
	// StreamEnd ends the current stream.
	StreamEnd bool
	File      *File
	// End is the summary, the last record; Next returns io.EOF after it.
	End *Summary
}

// bodyErr classifies an error of the body: the file's own read error as
// it is, anything else (a segment that does not authenticate, a body cut
// short) as ErrDamaged.
func (r *Reader) bodyErr(err error) error {
	if r.src.err != nil {
		return fmt.Errorf("read backup: %w", r.src.err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return damaged("the file ends before the backup does")
	}
	if r.src.eof {
		// The streaming AEAD reads the last segment to the end of the
		// file: one that does not authenticate there was cut or changed.
		return damaged("the end of the file does not authenticate (cut short, or its last part modified)")
	}
	return damaged("a part of the file does not authenticate")
}

// Next returns the next record, or io.EOF after the summary once the whole
// file has authenticated to its last byte.
func (r *Reader) Next() (Record, error) {
	if r.ended {
		// Nothing may follow the summary, and the streaming AEAD checks
		// the last segment only when it reads past it.
		var one [1]byte
		n, err := io.ReadFull(r.body, one[:])
		if n > 0 {
			return Record{}, damaged("data after the end")
		}
		if errors.Is(err, io.EOF) {
			return Record{}, io.EOF
		}
		return Record{}, r.bodyErr(err)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(r.body, hdr[:]); err != nil {
		return Record{}, r.bodyErr(err)
	}
	kind, n := hdr[0], binary.BigEndian.Uint32(hdr[1:])
	var limit uint32
	switch kind {
	case recStream:
		limit = maxStreamMeta
	case recChunk:
		limit = jetstream.MaxSnapshotChunk
	case recStreamEnd:
		limit = 0
	case recFile:
		limit = maxFileData*2 + 1024 // base64 in JSON
	case recEnd:
		limit = maxSummary
	default:
		return Record{}, damaged("unknown record %q", kind)
	}
	if n > limit {
		return Record{}, damaged("record %q of %d bytes", kind, n)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.body, b); err != nil {
		return Record{}, r.bodyErr(err)
	}
	switch kind {
	case recStream:
		if r.inside != "" {
			return Record{}, damaged("stream inside a stream")
		}
		var m streamMeta
		if err := strictjson.Unmarshal(b, &m); err != nil || !validStreamName(m.Name) || !json.Valid(m.Config) || !json.Valid(m.State) {
			return Record{}, damaged("stream description is not valid")
		}
		r.inside = m.Name
		return Record{Stream: &jetstream.StreamSnapshot{Name: m.Name, Config: m.Config, State: m.State}}, nil
	case recChunk:
		if r.inside == "" || n == 0 {
			return Record{}, damaged("chunk outside a stream")
		}
		return Record{Chunk: b}, nil
	case recStreamEnd:
		if r.inside == "" {
			return Record{}, damaged("end of no stream")
		}
		r.inside = ""
		return Record{StreamEnd: true}, nil
	case recFile:
		var f File
		if r.inside != "" || strictjson.Unmarshal(b, &f) != nil || !restorable(f.Path) || len(f.Data) > maxFileData {
			return Record{}, damaged("file record is not valid")
		}
		return Record{File: &f}, nil
	default: // recEnd
		var s Summary
		if r.inside != "" || strictjson.Unmarshal(b, &s) != nil {
			return Record{}, damaged("summary is not valid")
		}
		r.ended = true
		return Record{End: &s}, nil
	}
}

// validStreamName is what JetStream accepts as a stream name and what is
// safe as a directory name.
func validStreamName(s string) bool {
	if s == "" || len(s) > 255 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}
