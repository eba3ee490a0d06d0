package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

func newTestAuthenticator(t testing.TB) (*Authenticator, *memkv.Store, *fakeClock) {
	t.Helper()
	s := memkv.New()
	// 10 s into a step, so ±1 step is unambiguous.
	clk := &fakeClock{t: time.Unix(1_700_000_010, 0)}
	a := NewAuthenticator(s)
	a.now = clk.Now
	return a, s, clk
}

// enroll runs Begin and Confirm and returns the secret from the URI.
func enroll(t testing.TB, a *Authenticator, clk *fakeClock) string {
	t.Helper()
	ctx := context.Background()
	uri, err := a.Begin(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatalf("enrollment URI %q: %v", uri, err)
	}
	if key.Issuer() != "Aegis" || key.Period() != 30 || key.Digits() != otp.DigitsSix {
		t.Errorf("URI %q: issuer %q period %d digits %d", uri, key.Issuer(), key.Period(), key.Digits())
	}
	if err := a.Confirm(ctx, codeAt(t, key.Secret(), clk.Now())); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	return key.Secret()
}

func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCodeRefused(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, ErrUnauthenticated) || Reason(err) != reason {
		t.Fatalf("err = %v (reason %q), want ErrUnauthenticated with reason %q", err, Reason(err), reason)
	}
}

func TestTOTPEnrollment(t *testing.T) {
	a, _, clk := newTestAuthenticator(t)
	ctx := context.Background()
	st, err := a.Status(ctx)
	if err != nil || st.Enrolled || st.Pending {
		t.Fatalf("fresh status %+v, %v", st, err)
	}
	wantCodeRefused(t, a.Verify(ctx, "123456"), ReasonNoAuthenticator)
	if err := a.Confirm(ctx, "123456"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("confirm without enrollment: %v", err)
	}

	uri, err := a.Begin(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := otp.NewKeyFromURL(uri)
	if st, _ := a.Status(ctx); st.Enrolled || !st.Pending {
		t.Errorf("pending status %+v", st)
	}
	// A pending authenticator does not count for step-up.
	wantCodeRefused(t, a.Verify(ctx, codeAt(t, key.Secret(), clk.Now())), ReasonNoAuthenticator)
	wantCodeRefused(t, a.Confirm(ctx, "000000"), ReasonWrongCode)
	if err := a.Confirm(ctx, codeAt(t, key.Secret(), clk.Now())); err != nil {
		t.Fatal(err)
	}
	st, _ = a.Status(ctx)
	if !st.Enrolled || st.Pending || !st.EnrolledAt.Equal(clk.Now()) {
		t.Errorf("enrolled status %+v", st)
	}
	// The code that confirmed the enrollment is used up.
	wantCodeRefused(t, a.Verify(ctx, codeAt(t, key.Secret(), clk.Now())), ReasonReplayed)
}

func TestTOTPPendingExpires(t *testing.T) {
	a, _, clk := newTestAuthenticator(t)
	uri, err := a.Begin(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := otp.NewKeyFromURL(uri)
	clk.Advance(pendingTTL)
	if err := a.Confirm(context.Background(), codeAt(t, key.Secret(), clk.Now())); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("confirm after %s: %v", pendingTTL, err)
	}
}

func TestTOTPReplayAndSkew(t *testing.T) {
	a, _, clk := newTestAuthenticator(t)
	ctx := context.Background()
	secret := enroll(t, a, clk)

	clk.Advance(totpPeriod)
	now := clk.Now()
	code := codeAt(t, secret, now)
	if err := a.Verify(ctx, code); err != nil {
		t.Fatalf("current code: %v", err)
	}
	// The same code again, even from another node a moment later: refused.
	wantCodeRefused(t, a.Verify(ctx, code), ReasonReplayed)
	clk.Advance(5 * time.Second)
	wantCodeRefused(t, a.Verify(ctx, code), ReasonReplayed)

	// A code of the next step is accepted once, even early (clock skew)...
	next := codeAt(t, secret, now.Add(totpPeriod))
	if err := a.Verify(ctx, next); err != nil {
		t.Fatalf("code of the next step: %v", err)
	}
	// ...after which the current step's fresh code is an earlier step: replay.
	clk.Advance(totpPeriod)
	prev := codeAt(t, secret, clk.Now().Add(-totpPeriod))
	wantCodeRefused(t, a.Verify(ctx, prev), ReasonReplayed)

	// Two steps away is outside the skew.
	clk.Advance(5 * totpPeriod)
	wantCodeRefused(t, a.Verify(ctx, codeAt(t, secret, clk.Now().Add(-2*totpPeriod))), ReasonWrongCode)
	wantCodeRefused(t, a.Verify(ctx, codeAt(t, secret, clk.Now().Add(2*totpPeriod))), ReasonWrongCode)
	// One step late is inside it.
	if err := a.Verify(ctx, codeAt(t, secret, clk.Now().Add(-totpPeriod))); err != nil {
		t.Fatalf("code of the previous step: %v", err)
	}

	for _, bad := range []string{"", "12345", "1234567", "12345a", " 12345", strings.Repeat("9", 1<<10)} {
		wantCodeRefused(t, a.Verify(ctx, bad), ReasonWrongCode)
	}
}

// Many callers presenting the same code at once: exactly one wins.
func TestTOTPConcurrentReplay(t *testing.T) {
	a, _, clk := newTestAuthenticator(t)
	secret := enroll(t, a, clk)
	clk.Advance(totpPeriod)
	code := codeAt(t, secret, clk.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.Verify(context.Background(), code)
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if Reason(err) != ReasonReplayed {
				t.Errorf("err = %v, want replayed", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d callers accepted the same code, want 1", ok)
	}
}

// Re-enrolling replaces the active authenticator only once confirmed.
func TestTOTPReEnroll(t *testing.T) {
	a, _, clk := newTestAuthenticator(t)
	ctx := context.Background()
	old := enroll(t, a, clk)
	uri, err := a.Begin(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(totpPeriod)
	if err := a.Verify(ctx, codeAt(t, old, clk.Now())); err != nil {
		t.Fatalf("old authenticator while a new one is pending: %v", err)
	}
	key, _ := otp.NewKeyFromURL(uri)
	clk.Advance(totpPeriod)
	if err := a.Confirm(ctx, codeAt(t, key.Secret(), clk.Now())); err != nil {
		t.Fatal(err)
	}
	clk.Advance(totpPeriod)
	wantCodeRefused(t, a.Verify(ctx, codeAt(t, old, clk.Now())), ReasonWrongCode)
	if err := a.Verify(ctx, codeAt(t, key.Secret(), clk.Now())); err != nil {
		t.Fatalf("new authenticator: %v", err)
	}
}

// FuzzVerifyCode: whatever arrives in Aegis-OTP, a code that is not one of
// the three current ones is refused as a wrong code, without a panic and
// without using up a step.
func FuzzVerifyCode(f *testing.F) {
	a, _, clk := newTestAuthenticator(f)
	secret := enroll(f, a, clk)
	valid := map[string]bool{}
	for d := -1; d <= 1; d++ {
		valid[codeAt(f, secret, clk.Now().Add(time.Duration(d)*30*time.Second))] = true
	}
	for _, s := range []string{"", "000000", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345", "123456\n", strings.Repeat("9", 4096)} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, code string) {
		if valid[code] {
			t.Skip()
		}
		wantCodeRefused(t, a.Verify(ctx, code), ReasonWrongCode)
	})
}
