package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/netguard"
)

// alertReceiver is an operator's alert webhook on loopback: it checks
// every request's Aegis-Signature as a receiver would (the header parsed
// by Aegis's own parser, the HMAC recomputed and compared in constant
// time, the timestamp within five minutes) and keeps the alerts it
// accepted.
type alertReceiver struct {
	srv    *httptest.Server
	secret []byte

	mu     sync.Mutex
	bodies map[string][]string // alert id → bodies received
	rules  map[string]string   // alert id → its rule
	bad    []string
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	t.Helper()
	r := &alertReceiver{secret: make([]byte, 32), bodies: map[string][]string{}, rules: map[string]string{}}
	if _, err := rand.Read(r.secret); err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		id, err := r.verify(req, body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var a struct {
			Rule string `json:"rule"`
		}
		_ = json.Unmarshal(body, &a)
		r.bodies[id] = append(r.bodies[id], string(body))
		r.rules[id] = a.Rule
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *alertReceiver) verify(req *http.Request, body []byte) (string, error) {
	sh, err := auth.ParseSignatureHeader(req.Header.Get("Aegis-Signature"))
	if err != nil {
		return "", fmt.Errorf("signature header %q: %v", req.Header.Get("Aegis-Signature"), err)
	}
	if d := time.Since(time.Unix(sh.Timestamp, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "", fmt.Errorf("timestamp %d off by %v", sh.Timestamp, d)
	}
	mac := hmac.New(sha256.New, r.secret)
	fmt.Fprintf(mac, "%d.", sh.Timestamp)
	mac.Write(body)
	want := mac.Sum(nil)
	ok := false
	for _, s := range sh.Signatures {
		ok = ok || hmac.Equal(want, s[:])
	}
	if !ok {
		return "", fmt.Errorf("signature does not verify: %s", req.Header.Get("Aegis-Signature"))
	}
	id := req.Header.Get("Aegis-Alert-Id")
	var a struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || a.ID != id {
		return "", fmt.Errorf("Aegis-Alert-Id %q for body %s", id, body)
	}
	return id, nil
}

// byRule is how many distinct alerts of rule arrived, and how many
// deliveries of them in all.
func (r *alertReceiver) byRule(rule string) (alerts, deliveries int, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, bodies := range r.bodies {
		if r.rules[id] == rule {
			alerts++
			deliveries += len(bodies)
			ids = append(ids, id)
		}
	}
	return alerts, deliveries, ids
}

// loopbackOnly is the alert client of the test servers: whatever the
// configuration says, it dials nothing but loopback addresses.
func loopbackOnly() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !netguard.Loopback(addr) {
			return nil, fmt.Errorf("test alert client: dial to %s refused", addr)
		}
		return d.DialContext(ctx, network, addr)
	}}}
}

// TestGuardAlertsReachWebhook: a brute force from one address raises one
// alert, which reaches the operator's webhook once, signed, though two
// servers sharing the NATS both deliver alerts to it; `aegis guard alerts`
// lists it on either server, the client follows it, and the metrics and
// the log count it once.
func TestGuardAlertsReachWebhook(t *testing.T) {
	ctx := context.Background()
	recv := newAlertReceiver(t)
	hook := recv.srv.URL + "/hooks/aegis?token=receiver-own-token"
	// Both servers run the same rules and deliver to the same webhook.
	withHook := func(c *server.Config) {
		c.Guard.Rules = guardRules()
		c.AlertWebhooks = []string{hook}
		c.AlertWebhookSecret = recv.secret
		c.AlertClient = loopbackOnly()
	}
	in := startServerWith(t, t.TempDir(), withHook)
	t.Cleanup(func() { in.close(t) })
	deployProbe(t, in, "testdata/probe.yaml")
	second := startServerWith(t, t.TempDir(), func(c *server.Config) {
		shareNATS(c, in)
		withHook(c)
	})
	t.Cleanup(func() { second.close(t) })

	const wrong = "aegis_wrongwrongwrongwrongwrong"
	for i := range 6 { // more than brute_force's 5
		if st, body, _ := call(t, in.gateway, "POST", "/probe/echo", wrong, []byte("x")); st != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d %s, want 401", i+1, st, body)
		}
	}
	eventually(t, 20*time.Second, "the brute-force alert at the webhook", func() bool {
		n, _, _ := recv.byRule("brute_force")
		return n > 0
	})
	// Room for a second delivery (by the other server, or a retry),
	// which must not come.
	time.Sleep(2 * time.Second)
	recv.mu.Lock()
	bad := recv.bad
	recv.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("the receiver refused deliveries: %v", bad)
	}
	alerts, deliveries, ids := recv.byRule("brute_force")
	if alerts != 1 || deliveries != 1 {
		t.Fatalf("%d brute-force alerts in %d deliveries, want one delivered once", alerts, deliveries)
	}
	id := ids[0]
	recv.mu.Lock()
	var delivered map[string]any
	if err := json.Unmarshal([]byte(recv.bodies[id][0]), &delivered); err != nil {
		t.Fatal(err)
	}
	recv.mu.Unlock()
	for k, want := range map[string]any{"rule": "brute_force", "target": "127.0.0.1", "group_by": "address", "window": "1m0s"} {
		if delivered[k] != want {
			t.Errorf("delivered alert %s = %v, want %v", k, delivered[k], want)
		}
	}

	// Listed on both servers: the record is shared.
	for _, srv := range []*instance{in, second} {
		code, out, errs := aegisCLI(t, srv, "guard", "alerts", "-o", "json")
		if code != 0 {
			t.Fatalf("aegis guard alerts: %d %s", code, errs)
		}
		var listed []map[string]any
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("guard alerts -o json is not a JSON array: %v: %s", err, out)
		}
		var found map[string]any
		for _, a := range listed {
			if a["id"] == id {
				found = a
			}
		}
		if found == nil {
			t.Fatalf("alert %s not listed: %s", id, out)
		}
		if found["message"] != delivered["message"] || found["count"] != delivered["count"] {
			t.Errorf("listed %v, delivered %v", found, delivered)
		}
	}
	code, out, _ := aegisCLI(t, in, "guard", "alerts", "--since", "1h")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "brute_force") {
		t.Errorf("aegis guard alerts (table): %d %s", code, out)
	}

	// Followed: the recent alerts first.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var followed string
	err := in.admin.FollowGuardAlerts(fctx, client.GuardAlertQuery{Since: time.Now().Add(-time.Hour)}, func(a client.GuardAlert) error {
		if a.ID == id {
			followed = a.ID
			cancel()
		}
		return nil
	})
	if followed != id {
		t.Errorf("following alerts never handed over %s (%v)", id, err)
	}

	// Counted once: raised by one server, delivered by one.
	raised := in.srv.Metrics().GuardAlerts("brute_force") + second.srv.Metrics().GuardAlerts("brute_force")
	if raised != 1 {
		t.Errorf("aegis_guard_alerts_total{rule=brute_force} = %v across the servers, want 1", raised)
	}
	sum := func(outcome string) float64 {
		return in.srv.Metrics().GuardAlertDeliveries(outcome) + second.srv.Metrics().GuardAlertDeliveries(outcome)
	}
	if sum(metrics.DeliveryDelivered) < 1 || sum(metrics.DeliveryFailed) != 0 || sum(metrics.DeliveryRetried) != 0 {
		t.Errorf("deliveries: delivered %v, retried %v, failed %v", sum(metrics.DeliveryDelivered), sum(metrics.DeliveryRetried), sum(metrics.DeliveryFailed))
	}
	lines := append(in.logs.Messages("guard alert raised"), second.logs.Messages("guard alert raised")...)
	var brute []map[string]any
	for _, l := range lines {
		if l["rule"] == "brute_force" {
			brute = append(brute, l)
		}
	}
	if len(brute) != 1 || brute[0]["alert_id"] != id || brute[0]["security"] != true || brute[0]["alert"] != true || brute[0]["target"] != "127.0.0.1" {
		t.Errorf("alert lines %v, want one for %s", brute, id)
	}
	for _, srv := range []*instance{in, second} {
		for _, leak := range []string{hex.EncodeToString(recv.secret), string(recv.secret), "receiver-own-token", "/hooks/aegis"} {
			if strings.Contains(srv.logs.String(), leak) {
				t.Errorf("the server log holds %q", leak)
			}
		}
	}
}

// TestAlertWebhookNeedsSecret: a webhook without a signing secret is a
// configuration error, before anything starts.
func TestAlertWebhookNeedsSecret(t *testing.T) {
	_, err := server.New(server.Config{AlertWebhooks: []string{"https://hooks.example.com/aegis"}})
	if err == nil || !strings.Contains(err.Error(), "--alert-webhook needs a signing secret") {
		t.Fatalf("webhook without a secret: %v", err)
	}
	// The CLI says where the secret comes from, and never starts.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb strings.Builder
	code := cli.Run(ctx, []string{"server", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--alert-webhook", "https://hooks.example.com/aegis"}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code == 0 || !strings.Contains(errb.String(), "AEGIS_ALERT_WEBHOOK_SECRET") {
		t.Errorf("aegis server --alert-webhook without a secret: exit %d: %s", code, errb.String())
	}
}
