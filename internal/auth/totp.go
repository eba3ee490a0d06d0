package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/aegis-platform/aegis"
)

// MFAStore keeps the authenticator. It needs compare-and-swap (Update) so
// that two nodes sharing one NATS cannot both accept the same code.
type MFAStore interface {
	// Get returns aegis.ErrNotFound when the key is missing.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Put(ctx context.Context, key string, v []byte) (uint64, error)
	// Update writes only when the current revision is rev, otherwise
	// aegis.ErrConflict.
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Store layout of the authenticator, in the admin tokens' bucket.
const (
	mfaActiveKey  = "mfa.active"  // the enrolled authenticator
	mfaPendingKey = "mfa.pending" // one being enrolled, until confirmed
)

// TOTP parameters: RFC 6238's defaults, the only ones every authenticator
// app supports.
const (
	totpPeriod = 30 * time.Second
	totpDigits = otp.DigitsSix
	// totpSkew accepts the codes of the step before and after the current
	// one, for clocks a little apart and codes typed near a step's end.
	totpSkew = 1
	// pendingTTL bounds how long an enrollment may wait for its first code.
	pendingTTL = 10 * time.Minute
)

var totpOpts = totp.ValidateOpts{Period: uint(totpPeriod / time.Second), Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

// mfaRecord is an authenticator as stored. Secret is the base32 TOTP secret
// itself, as for webhook secrets: verifying a code needs it. It never
// leaves this file after Begin has returned the enrollment URI.
type mfaRecord struct {
	Secret     string     `json:"secret"`
	CreatedAt  time.Time  `json:"created_at"`
	EnrolledAt *time.Time `json:"enrolled_at,omitempty"`
	// LastStep is the time step (Unix time / 30 s) of the last accepted
	// code; a code of that step or an earlier one is refused as a replay.
	LastStep int64 `json:"last_step,omitempty"`
}

// MFAStatus says whether an authenticator is enrolled.
type MFAStatus struct {
	Enrolled   bool
	EnrolledAt time.Time
	// Pending: an enrollment waits for its first code.
	Pending bool
}

// Authenticator is the one TOTP (RFC 6238) authenticator of a platform:
// the second factor that dangerous admin changes need (step-up). Enrolling
// is two steps: Begin makes a pending secret and returns the otpauth URI
// to show once; Confirm activates it when given a code from it. Verify
// checks a code against the active one and refuses one already used.
type Authenticator struct {
	store MFAStore
	now   func() time.Time
}

// NewAuthenticator returns the authenticator kept in store.
func NewAuthenticator(store MFAStore) *Authenticator {
	return &Authenticator{store: store, now: time.Now}
}

// Status reports whether an authenticator is enrolled (and when) and
// whether an enrollment is pending. A store failure is an error: callers
// deciding whether step-up applies must fail closed.
func (a *Authenticator) Status(ctx context.Context) (MFAStatus, error) {
	var st MFAStatus
	rec, _, err := a.read(ctx, mfaActiveKey)
	switch {
	case err == nil:
		st.Enrolled = true
		if rec.EnrolledAt != nil {
			st.EnrolledAt = *rec.EnrolledAt
		}
	case !errors.Is(err, aegis.ErrNotFound):
		return st, fmt.Errorf("authenticator status: %w", err)
	}
	rec, _, err = a.read(ctx, mfaPendingKey)
	switch {
	case err == nil:
		st.Pending = a.now().Sub(rec.CreatedAt) < pendingTTL
	case !errors.Is(err, aegis.ErrNotFound):
		return st, fmt.Errorf("authenticator status: %w", err)
	}
	return st, nil
}

// Begin starts an enrollment: a new random secret (160 bits, RFC 4226's
// recommendation), pending until Confirm, replacing any earlier pending
// one. It returns the otpauth:// URI that authenticator apps read (as a QR
// code or typed in); it holds the secret, so the caller shows it to the
// enrolling operator once and never logs it. account names the platform
// in the app's list. Whether the caller may replace an active
// authenticator is the caller's decision (step-up).
func (a *Authenticator) Begin(ctx context.Context, account string) (string, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: "Aegis", AccountName: account, Period: totpOpts.Period,
		SecretSize: 20, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", fmt.Errorf("begin enrollment: %w", err)
	}
	rec := mfaRecord{Secret: key.Secret(), CreatedAt: a.now().UTC()}
	if err := a.write(ctx, mfaPendingKey, &rec); err != nil {
		return "", fmt.Errorf("begin enrollment: %w", err)
	}
	return key.URL(), nil
}

// Confirm activates the pending authenticator when code is a current code
// of it, replacing the active one if any. The code counts as used. No
// pending enrollment (or one older than ten minutes) is aegis.ErrNotFound;
// a wrong code is ErrUnauthenticated.
func (a *Authenticator) Confirm(ctx context.Context, code string) error {
	rec, _, err := a.read(ctx, mfaPendingKey)
	if err != nil {
		return fmt.Errorf("confirm enrollment: %w", err)
	}
	now := a.now()
	if now.Sub(rec.CreatedAt) >= pendingTTL {
		return fmt.Errorf("confirm enrollment: enrollment expired: %w", aegis.ErrNotFound)
	}
	step, ok := matchCode(rec.Secret, code, now)
	if !ok {
		return errWrongCode
	}
	enrolled := now.UTC()
	active := mfaRecord{Secret: rec.Secret, CreatedAt: rec.CreatedAt, EnrolledAt: &enrolled, LastStep: step}
	if err := a.write(ctx, mfaActiveKey, &active); err != nil {
		return fmt.Errorf("confirm enrollment: %w", err)
	}
	// A leftover pending record is harmless (it expires, and Confirm only
	// ever promotes it), so failing to delete it does not fail the call.
	_ = a.store.Delete(ctx, mfaPendingKey)
	return nil
}

// Verify checks code against the enrolled authenticator and marks its time
// step used, so the same code (or one of an earlier step) is refused from
// then on, on every node. No authenticator, a wrong code and a replayed one
// are ErrUnauthenticated with reasons "no authenticator", "wrong code" and
// "replayed"; other errors mean the store failed.
func (a *Authenticator) Verify(ctx context.Context, code string) error {
	for range 5 {
		rec, rev, err := a.read(ctx, mfaActiveKey)
		if errors.Is(err, aegis.ErrNotFound) {
			return errNoAuthenticator
		}
		if err != nil {
			return fmt.Errorf("verify code: %w", err)
		}
		step, ok := matchCode(rec.Secret, code, a.now())
		if !ok {
			return errWrongCode
		}
		if step <= rec.LastStep {
			return errReplayed
		}
		rec.LastStep = step
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("verify code: encode: %w", err)
		}
		_, err = a.store.Update(ctx, mfaActiveKey, b, rev)
		if errors.Is(err, aegis.ErrConflict) {
			// Another call used a code meanwhile: look again, since it
			// may have been this very code.
			continue
		}
		if err != nil {
			return fmt.Errorf("verify code: %w", err)
		}
		return nil
	}
	return fmt.Errorf("verify code: too much contention: %w", aegis.ErrUnavailable)
}

// matchCode reports the time step whose code is code, trying the current
// step and totpSkew steps on either side, latest first (so that a code
// shared by two steps marks the later one used). Anything but six ASCII
// digits matches nothing, without any work that depends on the secret.
func matchCode(secret, code string, now time.Time) (int64, bool) {
	if len(code) != int(totpDigits) {
		return 0, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
	}
	step := now.Unix() / int64(totpPeriod/time.Second)
	for d := int64(totpSkew); d >= -totpSkew; d-- {
		s := step + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(totpPeriod/time.Second), 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

func (a *Authenticator) read(ctx context.Context, key string) (*mfaRecord, uint64, error) {
	b, rev, err := a.store.Get(ctx, key)
	if errors.Is(err, aegis.ErrNotFound) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read authenticator: %w: %w", aegis.ErrUnavailable, err)
	}
	var rec mfaRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Secret == "" {
		return nil, 0, fmt.Errorf("read authenticator: damaged record: %w", aegis.ErrUnavailable)
	}
	return &rec, rev, nil
}

func (a *Authenticator) write(ctx context.Context, key string, rec *mfaRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode authenticator: %w", err)
	}
	if _, err := a.store.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store authenticator: %w", err)
	}
	return nil
}
