package adminapi

import "time"

// AuditRecord is one record of the audit log (GET /v1/audit; docs/audit.md
// describes every field). It never holds a secret.
type AuditRecord struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"`
	Kind      string            `json:"kind"`
	Actor     string            `json:"actor,omitempty"`
	Address   string            `json:"address,omitempty"`
	Action    string            `json:"action"`
	Target    string            `json:"target,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
	Outcome   string            `json:"outcome,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	PublicKey string            `json:"public_key,omitempty"`
	Seal      string            `json:"seal,omitempty"`
	Prev      string            `json:"prev"`
	Hash      string            `json:"hash"`
	Signature string            `json:"sig"`
}

// AuditVerification is the answer of GET /v1/audit/verify: whether the
// whole chain verifies with the server's audit key, and if not the first
// bad record.
type AuditVerification struct {
	OK             bool          `json:"ok"`
	PublicKey      string        `json:"public_key"`
	Records        int           `json:"records"`
	Checkpoints    int           `json:"checkpoints"`
	LastSeq        uint64        `json:"last_seq"`
	LastHash       string        `json:"last_hash,omitempty"`
	LastCheckpoint uint64        `json:"last_checkpoint,omitempty"`
	Problem        *AuditProblem `json:"problem,omitempty"`
}

// AuditProblem names the first bad record: its position in the chain as
// read (1-based), the sequence it has or should have, and what happened
// to it (modified, forged, deleted, inserted, reordered, unreadable, bad
// checkpoint, wrong key).
type AuditProblem struct {
	Position int    `json:"position"`
	Seq      uint64 `json:"seq"`
	What     string `json:"what"`
	Detail   string `json:"detail"`
}
