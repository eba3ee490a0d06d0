package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/aegis-platform/aegis/internal/auth"
	"github.com/aegis-platform/aegis/internal/rbac"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

const rootToken = "root-token-0123456789abcdef0123456789abcdef"

type testAPI struct {
	srv    *httptest.Server
	tokens *auth.AdminTokens
	logs   *logbuf.Buffer
}

func newTestAPI(t *testing.T, mode rbac.StepUpMode) *testAPI {
	t.Helper()
	logs := logbuf.New()
	store := memkv.New()
	tokens := auth.NewAdminTokens(store)
	reg := registry.New(registry.Config{State: memkv.New()})
	api := New(Config{
		Token: rootToken, Registry: reg, AdminTokens: tokens, MFA: auth.NewAuthenticator(store), StepUp: mode,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &testAPI{srv: srv, tokens: tokens, logs: logs}
}

func (ta *testAPI) token(t *testing.T, name string, role rbac.Role, apps ...string) string {
	t.Helper()
	tok, err := ta.tokens.Create(context.Background(), name, role, apps)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends one call and returns its status, error message and request id.
func (ta *testAPI) do(t *testing.T, token, method, path, body string, hdr ...string) (int, string, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ta.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	if e.Error == "" {
		e.Error = string(b)
	}
	return resp.StatusCode, e.Error, resp.Header.Get("X-Request-Id")
}

func TestRoutesMustDeclareAPermission(t *testing.T) {
	a := &API{mux: http.NewServeMux()}
	h := func(http.ResponseWriter, *http.Request, string) error { return nil }
	for name, reg := range map[string]func(){
		"zero access":        func() { a.handle("GET /x", access{}, h) },
		"scope without perm": func() { a.handle("GET /y", access{scope: rbac.ScopeList}, h) },
		"app scope, no app":  func() { a.handle("GET /z", onApp(rbac.Deploy), h) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered without a panic", name)
				}
			}()
			reg()
		}()
	}
}

func TestAuthorization(t *testing.T) {
	ta := newTestAPI(t, rbac.StepUpAuto)
	viewer := ta.token(t, "viewer", rbac.RoleViewer)
	operator := ta.token(t, "operator", rbac.RoleOperator)
	deployerX := ta.token(t, "deployer-x", rbac.RoleDeployer, "x")
	adminX := ta.token(t, "admin-x", rbac.RoleAdmin, "x")
	revoked := ta.token(t, "gone", rbac.RoleAdmin)
	if err := ta.tokens.Revoke(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, method, path, body string
		status                          int
		msg                             string // in the error, when refused
	}{
		{"health needs nothing", "", "GET", "/v1/health", "", 200, ""},
		{"no token", "", "GET", "/v1/apps", "", 401, "unauthorized"},
		{"wrong token", "nope", "GET", "/v1/apps", "", 401, "unauthorized"},
		{"revoked token", revoked, "GET", "/v1/apps", "", 401, "unauthorized"},
		{"viewer lists apps", viewer, "GET", "/v1/apps", "", 200, ""},
		{"viewer reads the step-up status", viewer, "GET", "/v1/mfa", "", 200, ""},
		{"viewer deploys", viewer, "POST", "/v1/apps/x/deploy", `{}`, 403, "forbidden: role viewer may not deploy"},
		{"viewer lists tokens", viewer, "GET", "/v1/tokens", "", 403, "role viewer may not manage admin tokens"},
		{"viewer uploads", viewer, "HEAD", "/v1/modules/" + strings.Repeat("a", 64), "", 403, ""},
		{"operator creates a key", operator, "POST", "/v1/keys", `{"name":"k"}`, 403, "role operator may not manage api keys"},
		{"operator rolls back", operator, "POST", "/v1/apps/x/rollback", "", 404, ""},
		{"operator rolls back to a version", operator, "POST", "/v1/apps/x/rollback", `{"to":2}`, 404, ""},
		{"operator rolls back to a negative version", operator, "POST", "/v1/apps/x/rollback", `{"to":-1}`, 400, "to must be a version number"},
		{"viewer lists versions", viewer, "GET", "/v1/apps/x/versions", "", 404, "app not found"},
		{"viewer rolls back", viewer, "POST", "/v1/apps/x/rollback", `{"to":1}`, 403, "role viewer may not roll back"},
		{"deployer lists another app's versions", deployerX, "GET", "/v1/apps/y/versions", "", 403, `may not act on app "y"`},
		{"deployer on its app", deployerX, "DELETE", "/v1/apps/x", "", 404, ""},
		{"deployer on another app", deployerX, "POST", "/v1/apps/y/deploy", `{}`, 403, `may not act on app "y"`},
		{"deployer reads another app's logs", deployerX, "GET", "/v1/logs?app=y", "", 403, `may not act on app "y"`},
		{"restricted admin creates a key", adminX, "POST", "/v1/keys", `{"name":"k"}`, 403, "limited to some apps"},
		{"restricted admin lists keys", adminX, "GET", "/v1/keys", "", 403, "limited to some apps"},
		{"root lists tokens", rootToken, "GET", "/v1/tokens", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg, reqID := ta.do(t, tt.token, tt.method, tt.path, tt.body)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%s %s: %d %q, want %d %q", tt.method, tt.path, status, msg, tt.status, tt.msg)
			}
			if reqID == "" {
				t.Error("no X-Request-Id")
			}
			switch status {
			case 401:
				if len(ta.logs.Lines(`"admin authentication failed"`, reqID, `"security":true`)) != 1 {
					t.Error("no security log line for the 401")
				}
			case 403:
				lines := ta.logs.Lines(`"admin call denied"`, reqID, `"security":true`)
				if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["token_name"] == "" {
					t.Errorf("security log lines for the 403: %v", lines)
				}
			}
		})
	}
	// No token ever reaches the log.
	for _, tok := range []string{viewer, operator, deployerX, adminX, revoked, rootToken} {
		if len(ta.logs.Lines(tok)) > 0 {
			t.Error("a token was logged")
		}
	}
}

// enroll enrolls an authenticator through the API and returns its secret.
func (ta *testAPI) enroll(t *testing.T) string {
	t.Helper()
	status, uri, _ := ta.do(t, rootToken, "POST", "/v1/mfa/enroll", "")
	if status != 201 {
		t.Fatalf("enroll: %d %s", status, uri)
	}
	var e struct{ URI string }
	if err := json.Unmarshal([]byte(uri), &e); err != nil {
		t.Fatalf("enroll answer %q", uri)
	}
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(key.Secret(), time.Now().Add(-30*time.Second))
	if status, msg, _ := ta.do(t, rootToken, "POST", "/v1/mfa/confirm", `{"code":"`+code+`"}`); status != 200 {
		t.Fatalf("confirm: %d %s", status, msg)
	}
	if len(ta.logs.Lines(key.Secret())) > 0 {
		t.Error("the TOTP secret was logged")
	}
	return key.Secret()
}

func TestStepUp(t *testing.T) {
	ta := newTestAPI(t, rbac.StepUpAuto)
	// Nothing enrolled: auto asks nothing. The app does not exist: 404
	// means the call got past step-up.
	if status, msg, _ := ta.do(t, rootToken, "DELETE", "/v1/apps/x", ""); status != 404 {
		t.Fatalf("delete before enrollment: %d %s", status, msg)
	}
	secret := ta.enroll(t)
	status, msg, reqID := ta.do(t, rootToken, "DELETE", "/v1/apps/x", "")
	if status != 403 || !strings.Contains(msg, "step-up required (delete app x)") || !strings.Contains(msg, "--otp") {
		t.Fatalf("without a code: %d %q", status, msg)
	}
	if l := ta.logs.Lines(reqID, `"security":true`, "step-up code missing"); len(l) != 1 {
		t.Errorf("security line: %v", l)
	}
	if status, msg, _ := ta.do(t, rootToken, "DELETE", "/v1/apps/x", "", OTPHeader, "000000"); status != 403 || !strings.Contains(msg, "wrong, expired or already used") {
		t.Fatalf("wrong code: %d %q", status, msg)
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	if status, msg, _ := ta.do(t, rootToken, "DELETE", "/v1/apps/x", "", OTPHeader, code); status != 404 {
		t.Fatalf("right code: %d %q", status, msg)
	}
	status, msg, reqID = ta.do(t, rootToken, "DELETE", "/v1/apps/x", "", OTPHeader, code)
	if status != 403 || len(ta.logs.Lines(reqID, "step-up replayed")) != 1 {
		t.Fatalf("replayed code: %d %q", status, msg)
	}
	// Replacing the authenticator is a step-up change too.
	if status, msg, _ := ta.do(t, rootToken, "POST", "/v1/mfa/enroll", ""); status != 403 || !strings.Contains(msg, "replace the enrolled authenticator") {
		t.Fatalf("re-enroll without a code: %d %q", status, msg)
	}
	// A call that is not dangerous ignores the header.
	if status, _, _ := ta.do(t, rootToken, "GET", "/v1/apps", "", OTPHeader, "garbage"); status != 200 {
		t.Fatalf("list with a stray code: %d", status)
	}
}

func TestStepUpModes(t *testing.T) {
	always := newTestAPI(t, rbac.StepUpAlways)
	if status, msg, _ := always.do(t, rootToken, "DELETE", "/v1/apps/x", ""); status != 403 || !strings.Contains(msg, "no authenticator is enrolled") {
		t.Fatalf("always without authenticator: %d %q", status, msg)
	}
	off := newTestAPI(t, rbac.StepUpOff)
	off.enroll(t)
	if status, msg, _ := off.do(t, rootToken, "DELETE", "/v1/apps/x", ""); status != 404 {
		t.Fatalf("off with an authenticator: %d %q", status, msg)
	}
	if status, msg, _ := off.do(t, rootToken, "GET", "/v1/mfa", ""); status != 200 || !strings.Contains(msg, `"required":false`) {
		t.Fatalf("off status: %d %q", status, msg)
	}
}

func TestCreateToken(t *testing.T) {
	ta := newTestAPI(t, rbac.StepUpAuto)
	status, body, _ := ta.do(t, rootToken, "POST", "/v1/tokens", `{"name":"ci","role":"deployer","apps":["shop"]}`)
	var out struct{ Name, Role, Token string }
	if status != 201 || json.Unmarshal([]byte(body), &out) != nil || out.Name != "ci" || out.Role != "deployer" || !auth.IsAdminToken(out.Token) {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, msg, _ := ta.do(t, out.Token, "POST", "/v1/apps/shop/rollback", ""); status != 404 {
		t.Fatalf("new token on its app: %d %s", status, msg)
	}
	for body, want := range map[string]int{
		`{"name":"ci","role":"viewer"}`:                   409,
		`{"name":"x","role":"superuser"}`:                 400,
		`{"name":"root","role":"admin"}`:                  400,
		`{"name":"y","role":"viewer","apps":["Bad App"]}`: 400,
	} {
		if status, msg, _ := ta.do(t, rootToken, "POST", "/v1/tokens", body); status != want {
			t.Errorf("create %s: %d %s, want %d", body, status, msg, want)
		}
	}
	status, body, _ = ta.do(t, rootToken, "GET", "/v1/tokens", "")
	if status != 200 || strings.Contains(body, out.Token) || !strings.Contains(body, `"ci"`) {
		t.Fatalf("list: %d %s", status, body)
	}
	if status, _, _ := ta.do(t, rootToken, "DELETE", "/v1/tokens/ci", ""); status != 204 {
		t.Fatalf("revoke: %d", status)
	}
	if status, _, _ := ta.do(t, out.Token, "GET", "/v1/apps", ""); status != 401 {
		t.Fatalf("revoked token: %d", status)
	}
	if status, _, _ := ta.do(t, rootToken, "DELETE", "/v1/tokens/nobody", ""); status != 404 {
		t.Fatalf("revoke unknown: %d", status)
	}
}
