// Package auth owns the credentials callers present to Aegis: API keys, JWTs
// from OpenID Connect issuers and signed webhooks, which unlock non-public
// routes, and the admin token, which unlocks the admin API. It creates
// them, verifies them and keeps only what verification needs.
//
// It must never log, store or put into an error any key material. A key's
// plaintext leaves this package exactly once, as the result of Keys.Create;
// the store holds only a SHA-256 of the secret; verification failures carry a
// reason word for the security log ("revoked", "wrong secret", ...) but never
// any part of the presented token.
//
// Webhook secrets are the exception to "keep only a hash": HMAC needs the
// secret itself, so the store holds it as created (until a vault exists to
// seal it). It leaves this package once, as the result of
// WebhookSecrets.Create, and is otherwise only used inside Webhooks.Verify.
//
// The package has no logger on purpose: the caller logs the reason, at one
// place, with the request id.
package auth
