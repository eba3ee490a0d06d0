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
	var rep Report
	// Where each sequence occurs, to tell a reordered record (its
	// sequence comes later) from a deleted one (it never does).
	later := make(map[uint64]int, len(records))
	for i := len(records) - 1; i >= 0; i-- {
		later[records[i].Seq] = i
	}
	var prev *Record
	for i := range records {
		r := &records[i]
		pos := i + 1
		bad := func(what, format string, args ...any) (Report, error) {
			seq := r.Seq
			if r.unreadable != "" && prev != nil {
				seq = prev.Seq + 1
			}
			return rep, &Problem{Position: pos, Seq: seq, What: what, Detail: fmt.Sprintf(format, args...)}
		}
		if r.unreadable != "" {
			return bad("unreadable", "%s", r.unreadable)
		}
		if r.ComputeHash() != r.Hash {
			return bad("modified", "its content does not match its hash")
		}
		if !signedBy(pub, []byte(r.Hash), r.Signature) {
			return bad("forged", "its signature is not by the audit key (modified and rehashed, or written without the key)")
		}
		want := uint64(1)
		if prev != nil {
			want = prev.Seq + 1
		}
		switch {
		case r.Seq > want:
			if j, ok := later[want]; ok && j > i {
				return bad("reordered", "record %d comes later (position %d)", want, j+1)
			}
			return rep, &Problem{Position: pos, Seq: want, What: "deleted",
				Detail: fmt.Sprintf("record %d is missing: record %d follows record %d", want, r.Seq, want-1)}
		case r.Seq < want:
			return bad("inserted", "sequence %d again after record %d", r.Seq, want-1)
		}
		if prev == nil {
			if r.Prev != "" || r.Kind != KindKey {
				return bad("wrong key", "the first record is not the chain's key record")
			}
		} else if r.Prev != prev.Hash {
			return bad("inserted", "its prev is not the hash of record %d (a record was replaced or inserted before it)", prev.Seq)
		}
		switch r.Kind {
		case KindKey:
			if k, ok := ParsePublicKey(r.PublicKey); !ok || !k.Equal(pub) {
				return bad("wrong key", "the chain's key record names another key than the one verifying")
			}
		case KindCheckpoint:
			if !signedBy(pub, SealMessage(r.Seq-1, r.Prev), r.Seal) {
				return bad("bad checkpoint", "its seal over record %d is not by the audit key", r.Seq-1)
			}
			rep.Checkpoints++
			rep.LastCheckpoint = r.Seq
		}
		rep.Records++
		rep.LastSeq, rep.LastHash = r.Seq, r.Hash
		prev = r
	}
	return rep, nil
}
