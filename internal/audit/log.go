package audit

import (
	"github.com/aegis-platform/aegis/internal/strictjson"

	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Stream is where the chain is kept: an append-only sequence of messages
// whose appends are conditional on the last sequence, so two writers
// sharing it never fork the chain. JetStream implements it (OnJetStream).
type Stream interface {
	// Tail returns the last sequence and the last stored message's data
	// (nil when there is none).
	Tail(ctx context.Context) (uint64, []byte, error)
	// Append stores data if the last sequence is still after and returns
	// the new sequence; a later append by another writer is an error
	// wrapping aegis.ErrConflict.
	Append(ctx context.Context, data []byte, msgID string, after uint64) (uint64, error)
	// Read returns up to limit messages from sequence from on.
	Read(ctx context.Context, from uint64, limit int) ([]Stored, error)
}

// Stored is one message of the stream.
type Stored struct {
	Seq  uint64
	Data []byte
}

// ErrKeyMismatch refuses appends by a server whose audit key is not the
// one the chain's key record names: its records would not verify.
var ErrKeyMismatch = errors.New("this server's audit key is not the chain's (copy DATA/keys/audit.key from the server that started the chain)")

// Config wires a Log.
type Config struct {
	Stream Stream
	Key    ed25519.PrivateKey
	Logger *slog.Logger
	// CheckpointEvery and CheckpointInterval say when this server seals
	// the chain: after that many of its own appends, or that long after
	// its first append since the last seal (defaults 100 and 1 minute).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	Now                func() time.Time
}

// Log appends to and reads the chain.
type Log struct {
	cfg Config
	pub ed25519.PublicKey
	log *slog.Logger

	mu        sync.Mutex // serializes this server's appends; the stream serializes servers
	tailSeq   uint64
	tailHash  string
	tailKnown bool
	mismatch  bool
	unsealed  int // appends since this server's last checkpoint

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// maxConflicts bounds how often one append re-reads the tail after losing
// a race to another server.
const maxConflicts = 32

// Open reads the chain's tail, writes the key record when the chain is
// new, and starts the checkpoint timer.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Stream == nil || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("open audit log: a stream and an Ed25519 key are required: %w", aegis.ErrInvalidArgument)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 100
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{cfg: cfg, pub: cfg.Key.Public().(ed25519.PublicKey), log: cfg.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.start(ctx); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	go l.run()
	return l, nil
}

// start writes the key record of a new chain, or checks that an existing
// chain's key is this server's.
func (l *Log) start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range maxConflicts {
		if err := l.readTail(ctx); err != nil {
			return err
		}
		if l.tailSeq > 0 {
			break
		}
		_, err := l.appendLocked(ctx, Record{Kind: KindKey, Action: "key", PublicKey: EncodePublicKey(l.pub)})
		if errors.Is(err, aegis.ErrConflict) {
			continue // another server started the chain first
		}
		return err
	}
	first, err := l.cfg.Stream.Read(ctx, 1, 1)
	if err != nil {
		return err
	}
	if len(first) > 0 {
		var r Record
		if json.Unmarshal(first[0].Data, &r) == nil && r.Kind == KindKey {
			if k, ok := ParsePublicKey(r.PublicKey); ok && !k.Equal(l.pub) {
				l.mismatch = true
				l.log.Error("audit key mismatch: admin changes on this server are refused until it has the chain's key",
					logkey.Security, true, logkey.Error, ErrKeyMismatch)
			}
		}
	}
	return nil
}

// PublicKey is the key the chain's records and checkpoints verify with.
func (l *Log) PublicKey() ed25519.PublicKey { return l.pub }

// Append writes r (its Seq, Time, Prev, Hash and signatures are set here)
// as the chain's next record and returns it as written. An error means it
// was not written: the caller must not apply the change it records.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mismatch {
		return Record{}, fmt.Errorf("append audit record: %w: %w", aegis.ErrUnavailable, ErrKeyMismatch)
	}
	out, err := l.appendRetrying(ctx, r)
	if err != nil {
		return Record{}, err
	}
	l.unsealed++
	if l.unsealed >= l.cfg.CheckpointEvery {
		l.checkpointLocked(ctx)
	}
	return out, nil
}

func (l *Log) appendRetrying(ctx context.Context, r Record) (Record, error) {
	for range maxConflicts {
		if !l.tailKnown {
			if err := l.readTail(ctx); err != nil {
				return Record{}, fmt.Errorf("append audit record: %w: %w", aegis.ErrUnavailable, err)
			}
		}
		out, err := l.appendLocked(ctx, r)
		if errors.Is(err, aegis.ErrConflict) {
			continue // another server appended: chain onto its record
		}
		if err != nil {
			return Record{}, fmt.Errorf("append audit record: %w: %w", aegis.ErrUnavailable, err)
		}
		return out, nil
	}
	return Record{}, fmt.Errorf("append audit record: %w: still racing other servers after %d attempts", aegis.ErrUnavailable, maxConflicts)
}

// appendLocked writes r after the tail as last read.
func (l *Log) appendLocked(ctx context.Context, r Record) (Record, error) {
	r.Seq = l.tailSeq + 1
	r.Prev = l.tailHash
	r.Time = l.cfg.Now().UTC()
	r.seal(l.cfg.Key)
	data, err := json.Marshal(r)
	if err != nil {
		return Record{}, err
	}
	seq, err := l.cfg.Stream.Append(ctx, data, r.Hash, l.tailSeq)
	if err != nil {
		l.tailKnown = false
		return Record{}, err
	}
	if seq != r.Seq {
		// The stream deduplicated a message it already had, or numbers
		// differently than the chain: read the tail before the next one.
		l.tailKnown = false
		return r, nil
	}
	l.tailSeq, l.tailHash, l.tailKnown = seq, r.Hash, true
	return r, nil
}

// readTail learns the last sequence and the hash to chain onto: the last
// record's, or, when the last message is not a record, its bytes' hash
// (Verify names such a message anyway).
func (l *Log) readTail(ctx context.Context) error {
	seq, data, err := l.cfg.Stream.Tail(ctx)
	if err != nil {
		return err
	}
	l.tailSeq, l.tailHash = seq, ""
	if data != nil {
		var r Record
		if json.Unmarshal(data, &r) == nil && r.Hash != "" {
			l.tailHash = r.Hash
		} else {
			sum := sha256.Sum256(data)
			l.tailHash = hex.EncodeToString(sum[:])
		}
	}
	l.tailKnown = true
	return nil
}

// checkpointLocked seals the chain so far; a failure is logged, and the
// next append or tick tries again.
func (l *Log) checkpointLocked(ctx context.Context) {
	if _, err := l.appendRetrying(ctx, Record{Kind: KindCheckpoint, Action: "checkpoint"}); err != nil {
		l.log.Error("audit checkpoint failed", logkey.Error, err)
		return
	}
	l.unsealed = 0
}

// run seals the chain every CheckpointInterval when this server appended
// since its last checkpoint.
func (l *Log) run() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if l.unsealed > 0 && !l.mismatch {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				l.checkpointLocked(ctx)
				cancel()
			}
			l.mu.Unlock()
		}
	}
}

// Close stops the checkpoint timer, sealing what this server appended
// since its last checkpoint. Safe to call twice.
func (l *Log) Close(ctx context.Context) {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.unsealed > 0 && !l.mismatch {
			l.checkpointLocked(ctx)
		}
	})
}

// pageSize is how many messages one read of the stream asks for.
const pageSize = 500

// Each calls fn with every record from sequence from on, oldest first. A
// message that does not decode is passed as an unreadable record, which
// Verify names.
func (l *Log) Each(ctx context.Context, from uint64, fn func(Record) error) error {
	for {
		page, err := l.cfg.Stream.Read(ctx, max(from, 1), pageSize)
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		for _, m := range page {
			if err := fn(decodeStored(m)); err != nil {
				return err
			}
			from = m.Seq + 1
		}
		if len(page) < pageSize {
			return nil
		}
	}
}

func decodeStored(m Stored) Record {
	var r Record
	if err := strictjson.Unmarshal(m.Data, &r); err != nil {
		return Record{Seq: m.Seq, unreadable: fmt.Sprintf("stream message %d is not a record", m.Seq)}
	}
	return r
}

// List returns the newest limit records written at or after since.
func (l *Log) List(ctx context.Context, since time.Time, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []Record
	err := l.Each(ctx, 1, func(r Record) error {
		if r.unreadable != "" || r.Time.Before(since) {
			return nil
		}
		out = append(out, r)
		if len(out) > limit {
			out = out[1:]
		}
		return nil
	})
	return out, err
}

// Verify reads the whole chain and verifies it with this server's key,
// one page at a time.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	v := NewVerifier(l.pub)
	err := l.Each(ctx, 1, v.Add)
	return v.Report(), err
}
