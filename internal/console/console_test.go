package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestSessionExpiry(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := memkv.New()
	s := sessions{store: store, idle: 30 * time.Minute, lifetime: 12 * time.Hour, now: clk.Now}
	id, rec, err := s.start(ctx, session{Name: "ops", TokenID: "abc"})
	if err != nil || rec.CSRF == "" || len(id) != 43 {
		t.Fatalf("start: %q %+v %v", id, rec, err)
	}
	keys, _ := store.Keys(ctx, "")
	if len(keys) != 1 || strings.Contains(keys[0], id) {
		t.Fatalf("the store keys the session by the cookie itself: %v", keys)
	}
	if raw, _, _ := store.Get(ctx, keys[0]); bytes.Contains(raw, []byte(id)) {
		t.Fatal("the store holds the cookie value")
	}
	// Activity keeps it alive past the idle time, up to the lifetime.
	for range 24 {
		clk.t = clk.t.Add(29 * time.Minute)
		if _, err := s.get(ctx, id); err != nil {
			t.Fatalf("active session ended at %v: %v", clk.t, err)
		}
	}
	clk.t = clk.t.Add(29 * time.Minute) // 12h05m after sign-in
	if _, err := s.get(ctx, id); !errors.Is(err, errNoSession) {
		t.Fatalf("session past its lifetime: %v", err)
	}
	if keys, _ := store.Keys(ctx, ""); len(keys) != 0 {
		t.Errorf("an expired session stays in the store: %v", keys)
	}

	id, _, _ = s.start(ctx, session{Name: "ops"})
	clk.t = clk.t.Add(31 * time.Minute)
	if _, err := s.get(ctx, id); !errors.Is(err, errNoSession) {
		t.Fatalf("idle session: %v", err)
	}

	id, _, _ = s.start(ctx, session{Name: "ops"})
	if err := s.end(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.get(ctx, id); !errors.Is(err, errNoSession) {
		t.Fatalf("ended session: %v", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 43) + "x", strings.Repeat("A", 43)} {
		if _, err := s.get(ctx, bad); !errors.Is(err, errNoSession) {
			t.Errorf("cookie %q: %v", bad, err)
		}
	}
	store.Set(storeKey(strings.Repeat("B", 43)), []byte("{not json"))
	if _, err := s.get(ctx, strings.Repeat("B", 43)); !errors.Is(err, errNoSession) {
		t.Errorf("damaged record: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	th := newThrottle(clk.Now)
	if w := th.wait("198.51.100.7"); w != 0 {
		t.Fatalf("no failure yet, wait %v", w)
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		th.fail("198.51.100.7")
		if got := th.wait("198.51.100.7"); got != w {
			t.Errorf("after %d failures wait %v, want %v", i+1, got, w)
		}
		clk.t = clk.t.Add(w)
		if got := th.wait("198.51.100.7"); got != 0 {
			t.Errorf("after waiting, still %v", got)
		}
	}
	if th.wait("203.0.113.9") != 0 {
		t.Error("another address waits")
	}
	clk.t = clk.t.Add(forgetAfter + time.Second)
	th.fail("198.51.100.7")
	if got := th.wait("198.51.100.7"); got != firstWait {
		t.Errorf("failures older than %v still count: %v", forgetAfter, got)
	}
	th.succeed("198.51.100.7")
	if th.wait("198.51.100.7") != 0 {
		t.Error("a success does not clear the failures")
	}
	for i := range maxTracked + 10 {
		th.fail(strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if len(th.m) > maxTracked {
		t.Errorf("tracks %d addresses, at most %d", len(th.m), maxTracked)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "/console/",
		"/console/apps/shop":       "/console/apps/shop",
		"/console/logs?app=a&x=1":  "/console/logs?app=a&x=1",
		"https://evil.example/":    "/console/",
		"//evil.example/console/":  "/console/",
		"/console//evil.example":   "/console/",
		"/console/\\evil.example":  "/console/",
		"/v1/keys":                 "/console/",
		"/console/x\r\nSet-Cookie": "/console/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/", "//x", "/console//x", "/console/\\x", "https://x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/console/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/console//") ||
			strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q leaves the console", next, got)
		}
	})
}

func TestSameOrigin(t *testing.T) {
	c := &Console{}
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   bool
	}{
		{"a client that is no browser", nil, true},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8081"}, true},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:8081"}, false},
		{"same-site, other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"other origin", map[string]string{"Origin": "http://localhost:8081"}, false},
		{"other scheme", map[string]string{"Origin": "https://127.0.0.1:8081"}, false},
		{"opaque origin", map[string]string{"Origin": "null"}, false},
	} {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8081/console/keys", nil)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		if got := c.sameOrigin(r); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestEveryPageRenders executes every template with its page's empty data
// and with a principal of each kind, so a field a template names that the
// page lacks fails here rather than in front of an operator.
func TestEveryPageRenders(t *testing.T) {
	c, err := New(Config{Sessions: memkv.New()})
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{
		"login": loginPage{Message: "m"}, "error": errorPage{Status: 404, Message: "m"}, "overview": overviewPage{ShowAlert: true},
		"app": appPage{}, "traces": tracesPage{}, "trace": tracePage{}, "logs": logsPage{}, "usage": usagePage{},
		"guard": guardPage{StepUp: true}, "audit": auditPage{}, "keys": keysPage{StepUp: true}, "dlq": dlqPage{},
	}
	if len(data) != len(c.pages.byName) {
		t.Fatalf("%d templates, %d tested", len(c.pages.byName), len(data))
	}
	for _, who := range []*rbac.Principal{rbac.Root(), {Name: "v", Role: rbac.RoleViewer, Apps: []string{"shop"}}} {
		for name, d := range data {
			w := httptest.NewRecorder()
			rq := &request{who: who, sess: &session{CSRF: "tok"}}
			c.render(w, httptest.NewRequest("GET", "/console/", nil), rq, http.StatusOK, name, "T", name, d)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "</html>") {
				t.Errorf("%s as %s: %d %s", name, who.Name, w.Code, w.Body.String())
			}
		}
	}
}

func TestRolesDecideActions(t *testing.T) {
	for _, tt := range []struct {
		who    rbac.Principal
		action string
		want   bool
	}{
		{rbac.Principal{Role: rbac.RoleViewer}, "platform", true},
		{rbac.Principal{Role: rbac.RoleViewer}, "lift", false},
		{rbac.Principal{Role: rbac.RoleOperator}, "lift", true},
		{rbac.Principal{Role: rbac.RoleOperator, Apps: []string{"shop"}}, "lift", false},
		{rbac.Principal{Role: rbac.RoleOperator}, "keys", false},
		{rbac.Principal{Role: rbac.RoleAdmin}, "keys", true},
		{rbac.Principal{Role: rbac.RoleAdmin}, "tokens", true},
		{rbac.Principal{Role: rbac.RoleOperator, Apps: []string{"shop"}}, "replay", true},
		{rbac.Principal{Role: rbac.RoleViewer}, "replay", false},
		{rbac.Principal{Role: rbac.RoleAdmin}, "anything else", false},
	} {
		v := view{Who: &tt.who}
		if got := v.Can(tt.action); got != tt.want {
			t.Errorf("%s %v may %s: %v, want %v", tt.who.Role, tt.who.Apps, tt.action, got, tt.want)
		}
	}
}

func TestActivityChart(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 30, 0, time.UTC)
	lines := []logLine{
		{Time: now.Add(-90 * time.Minute), Msg: "invocation"},        // before the hour
		{Time: now.Add(-30 * time.Minute), Msg: "invocation"},        // ok
		{Time: now.Add(-30 * time.Minute), Msg: "invocation failed"}, // trapped
		{Time: now.Add(-2 * time.Minute), Msg: "invocation", Status: 502},
		{Time: now.Add(-time.Minute), Msg: "saved entry 7"}, // a function's own line
		{Time: now, Msg: "invocation", Status: 201},
	}
	svg, total, failed := activityChart(lines, now)
	if total != 4 || failed != 2 {
		t.Errorf("counted %d invocations, %d failed; want 4 and 2", total, failed)
	}
	if !strings.Contains(string(svg), "<svg") {
		t.Errorf("no chart: %s", svg)
	}
}
