package audit

import (
	"crypto/ed25519"
	"fmt"
)

// Problem is the first thing wrong with a chain: which record (its
// position in what was read, 1-based, and the sequence it has or should
// have) and what happened to it.
type Problem struct {
	Position int    // 1-based index in the records given (an export's line minus the header)
	Seq      uint64 // the sequence of the bad record, or of the missing one
	What     string // modified, forged, deleted, inserted, reordered, unreadable, bad checkpoint, wrong key
	Detail   string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit record %d (position %d) %s: %s", p.Seq, p.Position, p.What, p.Detail)
}

// Report is what a chain that verifies holds.
type Report struct {
	Records        int    `json:"records"`
	Checkpoints    int    `json:"checkpoints"`
	LastSeq        uint64 `json:"last_seq"`
	LastHash       string `json:"last_hash,omitempty"`
	LastCheckpoint uint64 `json:"last_checkpoint,omitempty"`
}

// Verify walks records (the whole chain, oldest first) and returns the
// first Problem, or a Report when every record is intact: its hash matches
// its content, its signature is by pub, its sequence follows the one
// before, its prev is the hash before it, every checkpoint's seal is by
// pub, and the first record is the key record of pub.
//
// Nothing keyed can tell a chain cut short at its end from a shorter one:
// compare LastSeq with an earlier export or checkpoint kept elsewhere.
func Verify(records []Record, pub ed25519.PublicKey) (Report, error) {
	// Where each sequence first occurs, to tell a reordered record (its
	// predecessor comes later) from a deleted one (it never does).
	at := make(map[uint64]int, len(records))
	for i := len(records) - 1; i >= 0; i-- {
		at[records[i].Seq] = i + 1
	}
	v := Verifier{pub: pub, positions: at}
	for _, r := range records {
		if err := v.Add(r); err != nil {
			return v.rep, err
		}
	}
	return v.rep, nil
}

// Verifier checks a chain one record at a time, holding only the last
// one: for a stream, read in its order, which cannot be reordered.
type Verifier struct {
	pub       ed25519.PublicKey
	positions map[uint64]int // optional: where each sequence is (Verify)
	prev      *Record
	pos       int
	rep       Report
}

// NewVerifier verifies with pub.
func NewVerifier(pub ed25519.PublicKey) *Verifier { return &Verifier{pub: pub} }

// Report is what the records added so far hold.
func (v *Verifier) Report() Report { return v.rep }

// Add checks the next record; the first problem is returned, and the
// verifier should not be used after it.
func (v *Verifier) Add(rec Record) error {
	v.pos++
	r := &rec
	bad := func(what, format string, args ...any) error {
		seq := r.Seq
		if r.unreadable != "" && v.prev != nil {
			seq = v.prev.Seq + 1
		}
		return &Problem{Position: v.pos, Seq: seq, What: what, Detail: fmt.Sprintf(format, args...)}
	}
	if r.unreadable != "" {
		return bad("unreadable", "%s", r.unreadable)
	}
	if r.ComputeHash() != r.Hash {
		return bad("modified", "its content does not match its hash")
	}
	if !signedBy(v.pub, []byte(r.Hash), r.Signature) {
		return bad("forged", "its signature is not by the audit key (modified and rehashed, or written without the key)")
	}
	want := uint64(1)
	if v.prev != nil {
		want = v.prev.Seq + 1
	}
	switch {
	case r.Seq > want:
		if j, ok := v.positions[want]; ok && j > v.pos {
			return bad("reordered", "record %d comes later (position %d)", want, j)
		}
		return &Problem{Position: v.pos, Seq: want, What: "deleted",
			Detail: fmt.Sprintf("record %d is missing: record %d follows record %d", want, r.Seq, want-1)}
	case r.Seq < want:
		return bad("inserted", "sequence %d again after record %d", r.Seq, want-1)
	}
	if v.prev == nil {
		if r.Prev != "" || r.Kind != KindKey {
			return bad("wrong key", "the first record is not the chain's key record")
		}
	} else if r.Prev != v.prev.Hash {
		return bad("inserted", "its prev is not the hash of record %d (a record was replaced or inserted before it)", v.prev.Seq)
	}
	switch r.Kind {
	case KindKey:
		if k, ok := ParsePublicKey(r.PublicKey); !ok || !k.Equal(v.pub) {
			return bad("wrong key", "the chain's key record names another key than the one verifying")
		}
	case KindCheckpoint:
		if !signedBy(v.pub, SealMessage(r.Seq-1, r.Prev), r.Seal) {
			return bad("bad checkpoint", "its seal over record %d is not by the audit key", r.Seq-1)
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpoint = r.Seq
	}
	v.rep.Records++
	v.rep.LastSeq, v.rep.LastHash = r.Seq, r.Hash
	r.Detail = nil // only Seq and Hash of the previous record are needed
	v.prev = r
	return nil
}
