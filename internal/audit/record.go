// Package audit keeps the platform's tamper-evident audit log: who changed
// what through the admin API, from which address, with what outcome, and
// aggregated security events (refused admin calls, authentication failure
// bursts). Records are appended to one JetStream stream as a SHA-256 hash
// chain, each record also signed with the server's Ed25519 audit key, with
// signed checkpoints at intervals; Verify names the first record that was
// modified, deleted, inserted or reordered. docs/audit.md is the reference.
//
// A record never holds a secret: no API key, admin token, webhook secret,
// authenticator code or key material but the audit public key.
package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kinds of record.
const (
	KindKey        = "key"        // the chain's first record: the public key that signs it
	KindAdmin      = "admin"      // an admin change: its intent, then its outcome
	KindSecurity   = "security"   // refusals and failures, counted per group and window
	KindCheckpoint = "checkpoint" // a signature over the chain so far
)

// Outcomes of admin records.
const (
	OutcomeIntent = "intent" // written before the change is applied
	OutcomeOK     = "ok"
	OutcomeDenied = "denied" // 401 or 403
	OutcomeFailed = "failed" // any other error answer
)

// Record is one entry of the chain. Hash is SHA-256 over the canonical
// encoding of every other field but Signature (canonical), and Signature
// the Ed25519 signature of the hash with the audit key.
type Record struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"`
	Kind      string            `json:"kind"`
	Actor     string            `json:"actor,omitempty"`   // admin token name, or "root"; never the token
	Address   string            `json:"address,omitempty"` // the caller's IP address
	Action    string            `json:"action"`
	Target    string            `json:"target,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
	Outcome   string            `json:"outcome,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	// PublicKey is the audit key's public half (base64url), on the key
	// record.
	PublicKey string `json:"public_key,omitempty"`
	// Seal is, on a checkpoint, the Ed25519 signature (base64url) over the
	// sequence and hash of the record before it (SealMessage).
	Seal      string `json:"seal,omitempty"`
	Prev      string `json:"prev"`
	Hash      string `json:"hash"`
	Signature string `json:"sig"`

	// unreadable is set on a stored message or export line that did not
	// decode as a record; Verify names it.
	unreadable string
}

// canonical is the byte string the hash covers: a version line, then each
// field as name, length and value, detail keys sorted, so no two records
// encode alike and no field's value can pose as another field.
func (r *Record) canonical() []byte {
	var b []byte
	b = append(b, "aegis-audit/1\n"...)
	field := func(name, v string) {
		b = append(b, name...)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
		b = append(b, '\n')
	}
	field("seq", strconv.FormatUint(r.Seq, 10))
	field("time", r.Time.UTC().Format(time.RFC3339Nano))
	field("kind", r.Kind)
	field("actor", r.Actor)
	field("address", r.Address)
	field("action", r.Action)
	field("target", r.Target)
	keys := make([]string, 0, len(r.Detail))
	for k := range r.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	field("detail", strconv.Itoa(len(keys)))
	for _, k := range keys {
		field("detail.key", k)
		field("detail.value", r.Detail[k])
	}
	field("outcome", r.Outcome)
	field("request_id", r.RequestID)
	field("public_key", r.PublicKey)
	field("seal", r.Seal)
	field("prev", r.Prev)
	return b
}

// ComputeHash is the record's hash as it should be (hex SHA-256).
func (r *Record) ComputeHash() string {
	sum := sha256.Sum256(r.canonical())
	return hex.EncodeToString(sum[:])
}

// seal fills Hash and Signature, and for a checkpoint the Seal first.
func (r *Record) seal(key ed25519.PrivateKey) {
	if r.Kind == KindCheckpoint {
		r.Seal = b64(ed25519.Sign(key, SealMessage(r.Seq-1, r.Prev)))
	}
	r.Hash = r.ComputeHash()
	r.Signature = b64(ed25519.Sign(key, []byte(r.Hash)))
}

// SealMessage is what a checkpoint signs: the sequence and hash of the
// record it seals, and with it every record before.
func SealMessage(seq uint64, hash string) []byte {
	return []byte("aegis-audit-checkpoint/1\n" + strconv.FormatUint(seq, 10) + "\n" + hash)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// EncodePublicKey is how a public key is written in records, exports and
// the API: base64url without padding.
func EncodePublicKey(pub ed25519.PublicKey) string { return b64(pub) }

// ParsePublicKey reads EncodePublicKey's form.
func ParsePublicKey(s string) (ed25519.PublicKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(b), true
}

func signedBy(pub ed25519.PublicKey, msg []byte, sig string) bool {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	return err == nil && len(s) == ed25519.SignatureSize && ed25519.Verify(pub, msg, s)
}
