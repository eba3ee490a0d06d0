package admin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// brokenStream is an in-memory audit stream that fails while broken.
type brokenStream struct {
	mu     sync.Mutex
	msgs   [][]byte
	broken bool
}

func (s *brokenStream) Tail(context.Context) (uint64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return 0, nil, errors.New("stream unavailable")
	}
	if len(s.msgs) == 0 {
		return 0, nil, nil
	}
	return uint64(len(s.msgs)), s.msgs[len(s.msgs)-1], nil
}

func (s *brokenStream) Append(_ context.Context, data []byte, _ string, after uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return 0, errors.New("stream unavailable")
	}
	if after != uint64(len(s.msgs)) {
		return 0, aegis.ErrConflict
	}
	s.msgs = append(s.msgs, data)
	return uint64(len(s.msgs)), nil
}

func (s *brokenStream) Read(_ context.Context, from uint64, limit int) ([]audit.Stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Stored
	for i := from; i <= uint64(len(s.msgs)) && len(out) < limit; i++ {
		out = append(out, audit.Stored{Seq: i, Data: s.msgs[i-1]})
	}
	return out, nil
}

func (s *brokenStream) setBroken(b bool) {
	s.mu.Lock()
	s.broken = b
	s.mu.Unlock()
}

func newAuditedAPI(t *testing.T, adjust ...func(*Config)) (*testAPI, *brokenStream) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	stream := &brokenStream{}
	log, err := audit.Open(context.Background(), audit.Config{Stream: stream, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(context.Background()) })
	logs := logbuf.New()
	store := memkv.New()
	tokens := auth.NewAdminTokens(store)
	cfg := Config{
		Token: rootToken, Registry: registry.New(registry.Config{State: memkv.New()}), AdminTokens: tokens,
		MFA: auth.NewAuthenticator(store), Logger: slog.New(slog.NewJSONHandler(logs, nil)), Audit: log,
	}
	for _, f := range adjust {
		f(&cfg)
	}
	api := New(cfg)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &testAPI{srv: srv, tokens: tokens, logs: logs}, stream
}

func auditRecords(t *testing.T, ta *testAPI, token string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+"/v1/audit?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/audit: %d", resp.StatusCode)
	}
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChangeRecordedBeforeAndAfter: a token created through the API has
// an intent record and an outcome record naming who, from where and what,
// and neither holds the token.
func TestChangeRecordedBeforeAndAfter(t *testing.T) {
	ta, _ := newAuditedAPI(t)
	req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/v1/tokens", strings.NewReader(`{"name":"ci","role":"deployer"}`))
	req.Header.Set("Authorization", "Bearer "+rootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.Token == "" {
		t.Fatalf("create token: %d", resp.StatusCode)
	}
	recs := auditRecords(t, ta, rootToken)
	var outcomes []string
	for _, r := range recs {
		if r["action"] == "token.create" {
			outcomes = append(outcomes, fmt.Sprint(r["outcome"]))
			if r["actor"] != "root" || r["address"] != "127.0.0.1" {
				t.Errorf("record %v: actor or address", r)
			}
		}
	}
	if strings.Join(outcomes, ",") != "intent,ok" {
		t.Fatalf("token.create records %v, want intent then ok: %v", outcomes, recs)
	}
	last := recs[len(recs)-1]
	if last["target"] != "ci" || last["detail"].(map[string]any)["role"] != "deployer" {
		t.Fatalf("outcome record %v", last)
	}
	b, _ := json.Marshal(recs)
	if strings.Contains(string(b), created.Token) || strings.Contains(string(b), rootToken) {
		t.Fatal("an audit record holds a token")
	}
}

// TestChangeRefusedWhenAuditFails: with the audit stream unwritable the
// change answers 503 and is not made.
func TestChangeRefusedWhenAuditFails(t *testing.T) {
	ta, stream := newAuditedAPI(t)
	stream.setBroken(true)
	st, msg, _ := ta.do(t, rootToken, http.MethodPost, "/v1/tokens", `{"name":"ci","role":"deployer"}`)
	if st != http.StatusServiceUnavailable || !strings.Contains(msg, "audit log unavailable") {
		t.Fatalf("got %d %q, want 503 naming the audit log", st, msg)
	}
	stream.setBroken(false)
	list, err := ta.tokens.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("the token was created anyway: %v", list)
	}
}

// TestAuditReadNeedsOperator: a viewer may not read the audit log, an
// operator may, an operator limited to apps may not.
func TestAuditReadNeedsOperator(t *testing.T) {
	ta, _ := newAuditedAPI(t)
	for _, c := range []struct {
		role rbac.Role
		apps []string
		want int
	}{{rbac.RoleViewer, nil, 403}, {rbac.RoleOperator, nil, 200}, {rbac.RoleOperator, []string{"shop"}, 403}} {
		tok := ta.token(t, fmt.Sprintf("t-%s-%d", c.role, len(c.apps)), c.role, c.apps...)
		for _, path := range []string{"/v1/audit", "/v1/audit/verify", "/v1/audit/export"} {
			if st, _, _ := ta.do(t, tok, http.MethodGet, path, ""); st != c.want {
				t.Errorf("%s %v: %s answered %d, want %d", c.role, c.apps, path, st, c.want)
			}
		}
	}
}

// TestEveryChangingRouteIsAudited: a route that changes state without an
// audit action cannot be registered.
func TestEveryChangingRouteIsAudited(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an unaudited POST route was registered")
		}
	}()
	a := &API{mux: http.NewServeMux()}
	a.handle("POST /v1/something", platform(rbac.ManageKeys), nil)
}
