package auth

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// KeyOptions narrow what a new API key may do. The zero value is a key that
// may call every route that accepts API keys and never expires, which is
// what Create makes.
type KeyOptions struct {
	// Scopes are the apps ("diary") and functions ("diary/save-entry") the
	// key may call. Empty means all.
	Scopes []string
	// ExpiresIn is the key's lifetime from its creation; 0 means it never
	// expires. A rotation gives the new secret the same lifetime.
	ExpiresIn time.Duration
	// Labels are free-form notes for people ("owner": "mobile-team"); they
	// grant nothing.
	Labels map[string]string
	// Rate limits the key's requests at the gateway (one token bucket per
	// key name, counted per server); zero does not limit. Burst is the
	// bucket's size, 0 for the rate's count; it needs a rate.
	Rate  manifest.Rate
	Burst int
	// Budget caps the key's invocations per window; zero does not cap.
	Budget manifest.Quota
}

// Limits on key options, so that a record stays small and cheap to cache.
const (
	maxScopes       = 64
	maxLabels       = 32
	maxLabelKeyLen  = 63
	maxLabelValLen  = 256
	lastUsedSpacing = time.Minute
)

// scopeNameRE is the manifest's rule for app and function names.
var scopeNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

var labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// validate checks opts once, before anything is stored.
func (o *KeyOptions) validate() error {
	if len(o.Scopes) > maxScopes {
		return fmt.Errorf("at most %d scopes: %w", maxScopes, aegis.ErrInvalidArgument)
	}
	for _, s := range o.Scopes {
		if err := validateScope(s); err != nil {
			return err
		}
	}
	if o.ExpiresIn < 0 {
		return fmt.Errorf("expiry must not be negative: %w", aegis.ErrInvalidArgument)
	}
	if o.Burst < 0 || o.Burst > manifest.MaxRateCount {
		return fmt.Errorf("burst must be between 1 and %d: %w", manifest.MaxRateCount, aegis.ErrInvalidArgument)
	}
	if o.Burst > 0 && o.Rate.IsZero() {
		return fmt.Errorf("a burst needs a rate: %w", aegis.ErrInvalidArgument)
	}
	// Rates and budgets built in code rather than by ParseRate and
	// ParseQuota are held to the same grammar, so the record's text reads
	// back as the same limit.
	if r := o.Rate; !r.IsZero() && (r.Count < 1 || r.Count > manifest.MaxRateCount ||
		r.Per != time.Second && r.Per != time.Minute && r.Per != time.Hour) {
		return fmt.Errorf("rate %d per %s: %w", r.Count, r.Per, aegis.ErrInvalidArgument)
	}
	if q := o.Budget; !q.IsZero() && (q.Count < 1 || q.Count > manifest.MaxRateCount || !q.Per.Valid()) {
		return fmt.Errorf("budget %d per %q: %w", q.Count, q.Per, aegis.ErrInvalidArgument)
	}
	if len(o.Labels) > maxLabels {
		return fmt.Errorf("at most %d labels: %w", maxLabels, aegis.ErrInvalidArgument)
	}
	for k, v := range o.Labels {
		if !labelKeyRE.MatchString(k) {
			return fmt.Errorf("label %q: keys are 1-%d of A-Z a-z 0-9 _ . - : %w", k, maxLabelKeyLen, aegis.ErrInvalidArgument)
		}
		if len(v) > maxLabelValLen {
			return fmt.Errorf("label %q: value longer than %d bytes: %w", k, maxLabelValLen, aegis.ErrInvalidArgument)
		}
	}
	return nil
}

// validateScope accepts "app" and "app/function" with manifest names.
func validateScope(s string) error {
	app, fn, hasFn := strings.Cut(s, "/")
	if !scopeNameRE.MatchString(app) || hasFn && !scopeNameRE.MatchString(fn) {
		return fmt.Errorf("scope %q: want \"app\" or \"app/function\": %w", s, aegis.ErrInvalidArgument)
	}
	return nil
}

// Allows reports whether the key may call function of app: when it has no
// scopes, or one names the app or the function.
func (id *Identity) Allows(app, function string) bool {
	if len(id.Scopes) == 0 {
		return true
	}
	for _, s := range id.Scopes {
		a, fn, hasFn := strings.Cut(s, "/")
		if a == app && (!hasFn || fn == function) {
			return true
		}
	}
	return false
}
