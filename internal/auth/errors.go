package auth

import "errors"

// ErrUnauthenticated: the presented credential is missing, malformed, unknown,
// wrong or revoked. Callers get this one sentinel for every cause so that a
// client cannot probe which keys exist; the cause is available to the
// security log through Reason.
var ErrUnauthenticated = errors.New("unauthenticated")

// Reasons a verification failed, as returned by Reason. They name a cause,
// never a value, so they are safe to log.
const (
	ReasonMalformed   = "malformed"
	ReasonUnknownKey  = "unknown key"
	ReasonWrongSecret = "wrong secret"
	ReasonRevoked     = "revoked"

	// JWT (ReasonMalformed and ReasonUnknownKey serve as well).
	ReasonAlgNone         = "alg none"
	ReasonKeyConfusion    = "key confusion"
	ReasonAlgNotAllowed   = "algorithm not allowed"
	ReasonUnknownKid      = "unknown kid"
	ReasonBadSignature    = "bad signature"
	ReasonExpired         = "expired"
	ReasonNotYetValid     = "not yet valid"
	ReasonWrongAudience   = "wrong audience"
	ReasonWrongIssuer     = "wrong issuer"
	ReasonMissingClaim    = "missing claim"
	ReasonTokenTooLong    = "token too long"
	ReasonUnknownSecret   = "unknown webhook secret"
	ReasonReplayed        = "replayed"
	ReasonStaleTimestamp  = "stale timestamp"
	ReasonFutureTimestamp = "timestamp in the future"

	// TOTP step-up (ReasonReplayed serves as well).
	ReasonWrongCode       = "wrong code"
	ReasonNoAuthenticator = "no authenticator"
)

// verifyError is ErrUnauthenticated with its cause attached. Its message is
// the bare sentinel's, so an error string that reaches a client by mistake
// says no more than the 401 status would.
type verifyError struct{ reason string }

func (e *verifyError) Error() string { return ErrUnauthenticated.Error() }
func (e *verifyError) Unwrap() error { return ErrUnauthenticated }

// One immutable value per cause: failing verification allocates nothing,
// which matters when someone sprays a route with garbage tokens.
var (
	errMalformed   = &verifyError{ReasonMalformed}
	errUnknownKey  = &verifyError{ReasonUnknownKey}
	errWrongSecret = &verifyError{ReasonWrongSecret}
	errRevoked     = &verifyError{ReasonRevoked}

	errAlgNone         = &verifyError{ReasonAlgNone}
	errKeyConfusion    = &verifyError{ReasonKeyConfusion}
	errAlgNotAllowed   = &verifyError{ReasonAlgNotAllowed}
	errUnknownKid      = &verifyError{ReasonUnknownKid}
	errBadSignature    = &verifyError{ReasonBadSignature}
	errExpired         = &verifyError{ReasonExpired}
	errNotYetValid     = &verifyError{ReasonNotYetValid}
	errWrongAudience   = &verifyError{ReasonWrongAudience}
	errWrongIssuer     = &verifyError{ReasonWrongIssuer}
	errMissingClaim    = &verifyError{ReasonMissingClaim}
	errTokenTooLong    = &verifyError{ReasonTokenTooLong}
	errUnknownSecret   = &verifyError{ReasonUnknownSecret}
	errReplayed        = &verifyError{ReasonReplayed}
	errStaleTimestamp  = &verifyError{ReasonStaleTimestamp}
	errFutureTimestamp = &verifyError{ReasonFutureTimestamp}
	errWrongCode       = &verifyError{ReasonWrongCode}
	errNoAuthenticator = &verifyError{ReasonNoAuthenticator}
)

// Reason returns why a verification failed ("malformed", "unknown key",
// "expired", "replayed", ...), for the security log only — never for the
// client. It returns "" for nil and for errors that are not verification
// failures (a store outage, say).
func Reason(err error) string {
	var ve *verifyError
	if errors.As(err, &ve) {
		return ve.reason
	}
	return ""
}
