package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

func newTestWebhooks(t *testing.T) (*Webhooks, []byte, *fakeClock, *memStore) {
	t.Helper()
	store := newMemStore()
	secrets := NewWebhookSecrets(store)
	clk := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	secrets.now = clk.Now
	enc, err := secrets.Create(context.Background(), "shop", "payments")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(secret) != 32 {
		t.Fatalf("secret %q: %v", enc, err)
	}
	w := NewWebhooks(secrets, nil)
	w.now = clk.Now
	return w, secret, clk, store
}

func wantWebhookRefused(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("err = %v, want ErrUnauthenticated", err)
	}
	if got := Reason(err); got != reason {
		t.Fatalf("Reason = %q, want %q", got, reason)
	}
}

func TestWebhookAcceptsOnce(t *testing.T) {
	w, secret, clk, _ := newTestWebhooks(t)
	ctx := context.Background()
	body := []byte(`{"event":"paid","amount":100}`)
	sig := SignWebhook(secret, clk.Now(), body)
	if err := w.Verify(ctx, "shop", "payments", sig, body); err != nil {
		t.Fatal(err)
	}
	wantWebhookRefused(t, w.Verify(ctx, "shop", "payments", sig, body), ReasonReplayed)
	// Still a replay a little later, within the window.
	clk.Advance(time.Minute)
	wantWebhookRefused(t, w.Verify(ctx, "shop", "payments", sig, body), ReasonReplayed)
	// The same body signed again at another second is a new delivery.
	clk.Advance(time.Second)
	if err := w.Verify(ctx, "shop", "payments", SignWebhook(secret, clk.Now(), body), body); err != nil {
		t.Fatalf("new signature: %v", err)
	}
	// A second signature (a sender rotating secrets) is allowed.
	clk.Advance(time.Second)
	two := SignWebhook(secret, clk.Now(), body) + ",v1=" + strings.Repeat("ab", 32)
	if err := w.Verify(ctx, "shop", "payments", two, body); err != nil {
		t.Fatalf("header with two signatures: %v", err)
	}
}

// TestWebhookReplayToAnotherServer: two verifiers sharing a seen store
// stand for two servers on one NATS. A request accepted by one is a replay
// to the other, and a shared store that cannot be written fails closed.
func TestWebhookReplayToAnotherServer(t *testing.T) {
	first, secret, clk, store := newTestWebhooks(t)
	shared := newMemStore()
	first.shared = shared
	second := NewWebhooks(NewWebhookSecrets(store), shared)
	second.now = clk.Now
	ctx := context.Background()
	body := []byte(`{"event":"paid"}`)
	sig := SignWebhook(secret, clk.Now(), body)
	if err := first.Verify(ctx, "shop", "payments", sig, body); err != nil {
		t.Fatal(err)
	}
	wantWebhookRefused(t, second.Verify(ctx, "shop", "payments", sig, body), ReasonReplayed)

	shared.SetFail(errors.New("nats down"))
	clk.Advance(time.Second)
	err := second.Verify(ctx, "shop", "payments", SignWebhook(secret, clk.Now(), body), body)
	if err == nil || errors.Is(err, ErrUnauthenticated) || !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("shared store down: %v, want unavailable (fail closed)", err)
	}
}

// TestWebhookAttacks is the table of requests an attacker who captured or
// forged a webhook might send.
func TestWebhookAttacks(t *testing.T) {
	w, secret, clk, _ := newTestWebhooks(t)
	ctx := context.Background()
	now := clk.Now()
	body := []byte(`{"event":"paid","amount":100}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	cases := []struct {
		name, header string
		body         []byte
		secretName   string
		reason       string
	}{
		{"tampered body", SignWebhook(secret, now, body), []byte(`{"event":"paid","amount":1000}`), "payments", ReasonBadSignature},
		{"wrong secret", SignWebhook([]byte("guess"), now, body), body, "payments", ReasonBadSignature},
		{"timestamp changed", "t=" + strconv.FormatInt(now.Unix()-1, 10) + SignWebhook(secret, now, body)[len("t=")+len(ts):], body, "payments", ReasonBadSignature},
		{"stale timestamp", SignWebhook(secret, now.Add(-WebhookWindow-time.Second), body), body, "payments", ReasonStaleTimestamp},
		{"future timestamp", SignWebhook(secret, now.Add(WebhookWindow+time.Second), body), body, "payments", ReasonFutureTimestamp},
		{"unknown secret", SignWebhook(secret, now, body), body, "refunds", ReasonUnknownSecret},
		{"no v1", "t=" + ts, body, "payments", ReasonMalformed},
		{"no t", "v1=" + strings.Repeat("00", 32), body, "payments", ReasonMalformed},
		{"short v1", "t=" + ts + ",v1=abcd", body, "payments", ReasonMalformed},
		{"negative t", "t=-1,v1=" + strings.Repeat("00", 32), body, "payments", ReasonMalformed},
		{"two t", "t=" + ts + ",t=" + ts + ",v1=" + strings.Repeat("00", 32), body, "payments", ReasonMalformed},
		{"empty", "", body, "payments", ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantWebhookRefused(t, w.Verify(ctx, "shop", c.secretName, c.header, c.body), c.reason)
		})
	}
	// None of the refusals used up the good signature.
	if err := w.Verify(ctx, "shop", "payments", SignWebhook(secret, now, body), body); err != nil {
		t.Fatalf("good request after the attacks: %v", err)
	}
}

// TestWebhookSecretsAreScopedByApp: another app's secret of the same name
// is another secret.
func TestWebhookSecretsAreScopedByApp(t *testing.T) {
	w, secret, clk, _ := newTestWebhooks(t)
	ctx := context.Background()
	body := []byte("x")
	wantWebhookRefused(t, w.Verify(ctx, "other", "payments", SignWebhook(secret, clk.Now(), body), body), ReasonUnknownSecret)
	if _, err := w.secrets.Create(ctx, "shop", "payments"); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("second secret of the same name: %v, want ErrConflict", err)
	}
	for _, bad := range [][2]string{{"Shop", "x"}, {"shop", "a.b"}, {"shop", ""}, {"shop", strings.Repeat("a", 65)}} {
		if _, err := w.secrets.Create(ctx, bad[0], bad[1]); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("Create(%q, %q) = %v, want ErrInvalidArgument", bad[0], bad[1], err)
		}
	}
}

func TestWebhookStoreDownFailsClosed(t *testing.T) {
	w, secret, clk, store := newTestWebhooks(t)
	store.SetFail(errors.New("nats down"))
	body := []byte("x")
	err := w.Verify(context.Background(), "shop", "payments", SignWebhook(secret, clk.Now(), body), body)
	if err == nil || errors.Is(err, ErrUnauthenticated) || !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

// TestSeenSignaturesBounded: entries leave once their window has passed,
// and a cache full of live entries refuses rather than forget one.
func TestSeenSignaturesBounded(t *testing.T) {
	s := newSeenSignatures(3)
	now := time.Unix(1000, 0)
	add := func(i byte, exp time.Time) error {
		var mac [32]byte
		mac[0] = i
		return s.add("a", mac, exp, now)
	}
	for i := range byte(3) {
		if err := add(i, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(9, now.Add(time.Minute)); !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("full cache: %v, want unavailable", err)
	}
	now = now.Add(time.Minute)
	if err := add(9, now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(s.byKey) != 1 {
		t.Fatalf("%d entries, want 1", len(s.byKey))
	}
}

func FuzzParseWebhookHeader(f *testing.F) {
	f.Add("t=1700000000,v1=" + strings.Repeat("0a", 32))
	f.Add("t=1700000000,v1=" + strings.Repeat("0a", 32) + ",v0=old,v1=" + strings.Repeat("ff", 32))
	f.Add("t=,v1=")
	f.Add(" t=1 , v1=zz")
	f.Fuzz(func(t *testing.T, h string) {
		sh, err := ParseSignatureHeader(h)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) || Reason(err) != ReasonMalformed {
				t.Fatalf("err = %v, want malformed", err)
			}
			return
		}
		if sh.Timestamp < 0 || len(sh.Signatures) == 0 || len(sh.Signatures) > maxSignatures || len(h) > MaxSignatureHeaderLen {
			t.Fatalf("%q parsed to %+v", h, sh)
		}
	})
}
