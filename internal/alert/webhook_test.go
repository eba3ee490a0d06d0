package alert

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/internal/testkit/netguard"
)

func slogTo(b *logbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// loopbackClient dials loopback addresses only, whatever a test asks.
func loopbackClient() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !netguard.Loopback(addr) {
			return nil, fmt.Errorf("test client: dial to %s refused", addr)
		}
		return d.DialContext(ctx, network, addr)
	}}}
}

// receiver is an operator's webhook on loopback. It verifies each request
// as Aegis verifies the signed webhooks it accepts (auth.Webhooks, with a
// secret made by auth.WebhookSecrets), then answers what answer says for
// the request's number (1 for the first).
type receiver struct {
	srv    *httptest.Server
	secret []byte
	answer func(n int) int

	mu       sync.Mutex
	requests int
	bad      []string          // verification failures
	accepted map[string][]byte // alert id → body, of the 2xx answers
	counts   map[string]int    // alert id → deliveries accepted
	times    map[int]time.Time // request number → when
	headers  map[string]string // of the last request
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	ctx := context.Background()
	secrets := auth.NewWebhookSecrets(memkv.New())
	enc, err := secrets.Create(ctx, "ops", "alerts")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{secret: secret, answer: answer, accepted: map[string][]byte{}, counts: map[string]int{}, times: map[int]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		// A fresh verifier per request: a retry within the same second
		// carries the same signature, which is no replay of ours.
		verr := auth.NewWebhooks(secrets, nil).Verify(req.Context(), "ops", "alerts", req.Header.Get(HeaderSignature), body)
		var a guard.Alert
		if verr == nil {
			verr = json.Unmarshal(body, &a)
		}
		if verr == nil && (a.ID == "" || req.Header.Get(HeaderAlertID) != a.ID || req.Method != http.MethodPost ||
			req.Header.Get("Content-Type") != "application/json") {
			verr = fmt.Errorf("%s %s, id header %q for alert %q", req.Method, req.Header.Get("Content-Type"), req.Header.Get(HeaderAlertID), a.ID)
		}
		r.mu.Lock()
		r.requests++
		n := r.requests
		r.times[n] = time.Now()
		r.headers = map[string]string{HeaderSignature: req.Header.Get(HeaderSignature), HeaderAlertID: req.Header.Get(HeaderAlertID)}
		if verr != nil {
			r.bad = append(r.bad, verr.Error())
			r.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		st := r.answer(n)
		if st/100 == 2 {
			r.accepted[a.ID] = body
			r.counts[a.ID]++
		}
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) snapshot() (requests int, counts map[string]int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		c[k] = v
	}
	return r.requests, c, append([]string(nil), r.bad...)
}

func always(status int) func(int) int { return func(int) int { return status } }

// outcomes counts what OnOutcome heard.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[s]++
}

func (o *outcomes) get(s string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[s]
}

func startWebhooks(t *testing.T, node *jetstream.Node, cfg WebhookConfig) *Webhooks {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = loopbackClient()
	}
	w, err := StartWebhooks(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An alert reaches the webhook once, signed as Aegis signs, its body the
// alert's JSON; the secret and the URL's path are in no log line.
func TestWebhookDeliversSigned(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	logs := logbuf.New()
	l := openLog(t, node, logs)
	r := newReceiver(t, always(http.StatusNoContent))
	var out outcomes
	hook := r.srv.URL + "/hooks/s3cr3t-path-token?k=q5"
	startWebhooks(t, node, WebhookConfig{URLs: []string{hook}, Secret: r.secret, Logger: slogTo(logs), OnOutcome: out.add})

	a := sampleAlert("inc-1", time.Now())
	if err := l.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery", func() bool { return out.get(OutcomeDelivered) == 1 })
	time.Sleep(300 * time.Millisecond) // room for a second delivery, which must not come
	requests, counts, bad := r.snapshot()
	if len(bad) > 0 {
		t.Fatalf("the receiver refused: %v", bad)
	}
	if requests != 1 || counts["inc-1"] != 1 {
		t.Errorf("%d requests, %v accepted; want one", requests, counts)
	}
	want, _ := json.Marshal(a)
	r.mu.Lock()
	body := string(r.accepted["inc-1"])
	sig := r.headers[HeaderSignature]
	r.mu.Unlock()
	if body != string(want) {
		t.Errorf("body %s, want the alert's JSON %s", body, want)
	}
	if !strings.HasPrefix(sig, "t=") || !strings.Contains(sig, ",v1=") {
		t.Errorf("signature header %q", sig)
	}
	for _, secret := range []string{string(r.secret), "s3cr3t-path-token", "k=q5"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	// Alerts raised before the webhook was set are not delivered to it.
	if out.get(OutcomeRetried)+out.get(OutcomeFailed) != 0 {
		t.Errorf("outcomes %v", out.n)
	}
}

// A receiver that fails twice gets the alert a third time, after growing
// waits, and it is delivered once.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	logs := logbuf.New()
	l := openLog(t, node, logs)
	r := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var out outcomes
	startWebhooks(t, node, WebhookConfig{URLs: []string{r.srv.URL}, Secret: r.secret, Logger: slogTo(logs), OnOutcome: out.add,
		RetryBase: 200 * time.Millisecond, RetryMax: time.Second})
	if err := l.Publish(ctx, sampleAlert("inc-2", time.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery", func() bool { return out.get(OutcomeDelivered) == 1 })
	time.Sleep(500 * time.Millisecond)
	requests, counts, bad := r.snapshot()
	if len(bad) > 0 {
		t.Fatalf("the receiver refused: %v", bad)
	}
	if requests != 3 || counts["inc-2"] != 1 {
		t.Errorf("%d requests, %v accepted; want 3 requests, one accepted", requests, counts)
	}
	if out.get(OutcomeRetried) != 2 || out.get(OutcomeFailed) != 0 {
		t.Errorf("outcomes %v, want 2 retried and 1 delivered", out.n)
	}
	r.mu.Lock()
	first, second := r.times[2].Sub(r.times[1]), r.times[3].Sub(r.times[2])
	r.mu.Unlock()
	if first < 150*time.Millisecond || second < 350*time.Millisecond {
		t.Errorf("retries after %v and %v, want about 200ms then 400ms", first, second)
	}
	if got := logs.Messages("alert webhook delivery failed, will retry"); len(got) != 2 {
		t.Errorf("%d retry lines, want 2", len(got))
	}
}

// A receiver that never accepts gets MaxAttempts attempts; then the alert
// is given up, with a warning, and never sent again. A redirect is a
// failure, not followed.
func TestWebhookGivesUp(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	logs := logbuf.New()
	l := openLog(t, node, logs)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	r := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusTemporaryRedirect
		}
		return http.StatusInternalServerError
	})
	// The redirect's target: a loopback server that must never be called.
	inner := r.srv.Config.Handler
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Location", other.URL)
		inner.ServeHTTP(w, req)
	})
	var out outcomes
	startWebhooks(t, node, WebhookConfig{URLs: []string{r.srv.URL}, Secret: r.secret, Logger: slogTo(logs), OnOutcome: out.add,
		RetryBase: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond, MaxAttempts: 3})
	if err := l.Publish(ctx, sampleAlert("inc-3", time.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "giving up", func() bool { return out.get(OutcomeFailed) == 1 })
	time.Sleep(500 * time.Millisecond)
	requests, counts, bad := r.snapshot()
	if requests != 3 || len(counts) != 0 || len(bad) != 0 {
		t.Errorf("%d requests, %v accepted, refused %v; want 3 attempts, none accepted", requests, counts, bad)
	}
	if elsewhere.Load() != 0 {
		t.Error("the redirect was followed")
	}
	if out.get(OutcomeRetried) != 2 || out.get(OutcomeDelivered) != 0 {
		t.Errorf("outcomes %v, want 2 retried, 1 failed", out.n)
	}
	lines := logs.Messages("alert webhook delivery given up")
	if len(lines) != 1 {
		t.Fatalf("%d give-up lines, want 1", len(lines))
	}
	if lines[0]["level"] != "WARN" || lines[0]["alert_id"] != "inc-3" || lines[0]["attempts"] != 3.0 || lines[0]["url"] != r.srv.URL {
		t.Errorf("give-up line %v", lines[0])
	}
}

// Two servers on one NATS (two deliverers of the same webhook) deliver
// each alert once between them.
func TestWebhookOnceAcrossServers(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	l := openLog(t, node, logbuf.New())
	r := newReceiver(t, always(http.StatusOK))
	var out outcomes
	for range 2 {
		startWebhooks(t, node, WebhookConfig{URLs: []string{r.srv.URL}, Secret: r.secret, OnOutcome: out.add})
	}
	const n = 30
	for i := range n {
		if err := l.Publish(ctx, sampleAlert(fmt.Sprintf("inc-%02d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every delivery", func() bool { return out.get(OutcomeDelivered) >= n })
	time.Sleep(500 * time.Millisecond)
	requests, counts, bad := r.snapshot()
	if len(bad) > 0 {
		t.Fatalf("the receiver refused: %v", bad)
	}
	if requests != n || len(counts) != n {
		t.Errorf("%d requests for %d distinct alerts, want %d each", requests, len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Errorf("alert %s delivered %d times", id, c)
		}
	}
}

// The webhook's consumer is durable: alerts raised while no server runs
// are delivered when one starts again.
func TestWebhookResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	l := openLog(t, node, logbuf.New())
	r := newReceiver(t, always(http.StatusOK))
	var out outcomes
	cfg := WebhookConfig{URLs: []string{r.srv.URL}, Secret: r.secret, OnOutcome: out.add, Client: loopbackClient()}
	w, err := StartWebhooks(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	w.Close() // twice is fine
	if err := l.Publish(ctx, sampleAlert("while-down", time.Now())); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if requests, _, _ := r.snapshot(); requests != 0 {
		t.Fatalf("%d requests while stopped", requests)
	}
	startWebhooks(t, node, cfg)
	waitFor(t, "the delivery after the restart", func() bool { return out.get(OutcomeDelivered) == 1 })
	if _, counts, _ := r.snapshot(); counts["while-down"] != 1 {
		t.Errorf("accepted %v", counts)
	}
}

func TestCheckWebhooks(t *testing.T) {
	secret := []byte(strings.Repeat("s", MinSecretLen))
	for _, c := range []struct {
		urls   []string
		secret []byte
		ok     bool
	}{
		{nil, nil, true}, // no webhook, no secret needed
		{[]string{"https://hooks.example.com/aegis"}, secret, true},
		{[]string{"http://127.0.0.1:9000/alerts"}, secret, true},
		{[]string{"http://[::1]:9000/"}, secret, true},
		{[]string{"http://localhost:9000/"}, secret, true},
		{[]string{"http://hooks.example.com/aegis"}, secret, false},
		{[]string{"http://10.0.0.1/aegis"}, secret, false},
		{[]string{"ftp://hooks.example.com/"}, secret, false},
		{[]string{"hooks.example.com/aegis"}, secret, false},
		{[]string{"https://hooks.example.com/aegis#x"}, secret, false},
		{[]string{"https://"}, secret, false},
		{[]string{"https://hooks.example.com/"}, nil, false},
		{[]string{"https://hooks.example.com/"}, secret[:MinSecretLen-1], false},
		{make([]string, MaxWebhooks+1), secret, false},
	} {
		err := CheckWebhooks(c.urls, c.secret)
		if (err == nil) != c.ok {
			t.Errorf("CheckWebhooks(%q, %d bytes) = %v, want ok %v", c.urls, len(c.secret), err, c.ok)
		}
		if err != nil && !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("CheckWebhooks(%q): %v is not invalid argument", c.urls, err)
		}
		if err != nil && strings.Contains(err.Error(), "/aegis") {
			t.Errorf("the error quotes the URL's path: %v", err)
		}
	}
	if _, err := StartWebhooks(nil, WebhookConfig{URLs: []string{"https://hooks.example.com/"}}); err == nil {
		t.Error("StartWebhooks without a secret started")
	}
}

func TestBackoff(t *testing.T) {
	h := &webhook{cfg: WebhookConfig{}.withDefaults()}
	var got []string
	for attempt := 1; attempt <= 9; attempt++ {
		got = append(got, h.backoff(attempt).String())
	}
	if want := "1s 2s 4s 8s 16s 32s 1m0s 1m0s 1m0s"; strings.Join(got, " ") != want {
		t.Errorf("backoff = %s, want %s", strings.Join(got, " "), want)
	}
}

func TestConsumerName(t *testing.T) {
	a, b := ConsumerName("https://a.example.com/x?token=1"), ConsumerName("https://a.example.com/x?token=2")
	if a == b || a != ConsumerName("https://a.example.com/x?token=1") {
		t.Errorf("names %s %s", a, b)
	}
	if strings.ContainsAny(a, ".*> ") || strings.Contains(a, "token") {
		t.Errorf("name %q is no valid consumer name or shows the URL", a)
	}
}

// TestRemovedWebhookForgotten: a webhook's consumer stays while a server
// delivers to it and is deleted once none has for ForgetAfter, so a
// webhook taken out of the flags leaves nothing behind in the stream.
func TestRemovedWebhookForgotten(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	openLog(t, node, logbuf.New())
	r := newReceiver(t, always(http.StatusOK))
	cfg := WebhookConfig{URLs: []string{r.srv.URL}, Secret: r.secret, Client: loopbackClient(), ForgetAfter: time.Second}
	w, err := StartWebhooks(node, cfg)
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		backlog, err := node.ConsumerBacklog(ctx, Stream)
		if err != nil {
			t.Fatal(err)
		}
		return len(backlog)
	}
	time.Sleep(2500 * time.Millisecond)
	if consumers() != 1 {
		w.Close()
		t.Fatal("the consumer of a webhook in use was forgotten")
	}
	w.Close()
	waitFor(t, "the consumer of the removed webhook deleted", func() bool { return consumers() == 0 })
}
