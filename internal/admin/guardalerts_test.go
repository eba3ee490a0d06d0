package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// fakeAlerts records what it was asked and answers with its alerts; Follow
// then hands over live ones until its context ends.
type fakeAlerts struct {
	alerts []guard.Alert
	live   chan guard.Alert

	mu    sync.Mutex
	since time.Time
	limit int
}

func (f *fakeAlerts) List(_ context.Context, since time.Time, limit int) ([]guard.Alert, error) {
	f.mu.Lock()
	f.since, f.limit = since, limit
	f.mu.Unlock()
	return f.alerts, nil
}

func (f *fakeAlerts) Follow(ctx context.Context, since time.Time, limit int, fn func(guard.Alert) error) error {
	got, _ := f.List(ctx, since, limit)
	for _, a := range got {
		if err := fn(a); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-f.live:
			if err := fn(a); err != nil {
				return err
			}
		}
	}
}

// fullAlert has every field of guard.Alert set.
func fullAlert(id string) guard.Alert {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	return guard.Alert{ID: id, Time: now, Rule: "spend_spike", Signals: []string{"spend"}, GroupBy: "function",
		Target: "shop/orders", Count: 12.5, Window: "1m0s", Baseline: 0.5, Actions: []string{"alert", "throttle 10m0s"},
		Blocks: []string{"b1"}, Message: "spend of shop/orders 25x its baseline", Until: now.Add(10 * time.Minute)}
}

func newAlertsAPI(t *testing.T, f *fakeAlerts) (*httptest.Server, *auth.AdminTokens) {
	t.Helper()
	store := memkv.New()
	tokens := auth.NewAdminTokens(store)
	api := New(Config{Token: rootToken, Registry: registry.New(registry.Config{State: memkv.New()}), AdminTokens: tokens,
		MFA: auth.NewAuthenticator(store), Logger: slog.New(slog.NewJSONHandler(logbuf.New(), nil)), Alerts: f})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, tokens
}

func getAlerts(t *testing.T, srv *httptest.Server, token, query string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/guard/alerts"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp, []byte(b.String())
}

func TestGuardAlertsList(t *testing.T) {
	f := &fakeAlerts{alerts: []guard.Alert{fullAlert("a1"), fullAlert("a2")}}
	srv, tokens := newAlertsAPI(t, f)
	viewer, err := tokens.Create(context.Background(), "viewer", rbac.RoleViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	resp, body := getAlerts(t, srv, viewer, "?since=1h&limit=5")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("viewer listing alerts: %d %s", resp.StatusCode, body)
	}
	var got []adminapi.GuardAlert
	if err := json.Unmarshal(body, &got); err != nil || len(got) != 2 {
		t.Fatalf("answer %s: %v", body, err)
	}
	// The admin API's body says what the alert record says, field for
	// field: a field added to guard.Alert and not here fails this.
	want, _ := json.Marshal(fullAlert("a1"))
	have, _ := json.Marshal(got[0])
	if string(want) != string(have) {
		t.Errorf("listed %s\nwant   %s", have, want)
	}
	f.mu.Lock()
	since, limit := f.since, f.limit
	f.mu.Unlock()
	if limit != 5 || since.Before(before.Add(-time.Hour-time.Second)) || since.After(before.Add(-time.Hour+time.Minute)) {
		t.Errorf("asked since %v limit %d, want an hour ago and 5", since, limit)
	}
	at := "2025-05-01T11:00:00Z"
	if resp, body := getAlerts(t, srv, rootToken, "?since="+at); resp.StatusCode != http.StatusOK {
		t.Errorf("since an RFC 3339 time: %d %s", resp.StatusCode, body)
	}
	f.mu.Lock()
	if !f.since.Equal(time.Date(2025, 5, 1, 11, 0, 0, 0, time.UTC)) || f.limit != 100 {
		t.Errorf("asked since %v limit %d, want 11:00 and the default 100", f.since, f.limit)
	}
	f.mu.Unlock()

	for _, q := range []string{"?since=-1h", "?since=yesterday", "?limit=0", "?limit=10001", "?limit=x", "?follow=maybe"} {
		if resp, body := getAlerts(t, srv, rootToken, q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, resp.StatusCode, body)
		}
	}
	// Alerts are the platform's: a token limited to an app may not read them.
	limited, err := tokens.Create(context.Background(), "shop-viewer", rbac.RoleViewer, []string{"shop"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := getAlerts(t, srv, limited, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("app-limited token: %d, want 403", resp.StatusCode)
	}
}

func TestGuardAlertsFollow(t *testing.T) {
	f := &fakeAlerts{alerts: []guard.Alert{fullAlert("a1")}, live: make(chan guard.Alert)}
	srv, _ := newAlertsAPI(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/guard/alerts?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+rootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	line := func() adminapi.GuardAlert {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		var a adminapi.GuardAlert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		return a
	}
	if a := line(); a.ID != "a1" {
		t.Errorf("first line %s, want a1", a.ID)
	}
	f.live <- fullAlert("live")
	if a := line(); a.ID != "live" {
		t.Errorf("then %s, want live", a.ID)
	}
}
