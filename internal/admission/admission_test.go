package admission

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/policy"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/manifest"
)

// guarded is a route with a rule (the "x-ok" header must be "yes") and a
// schema (a JSON object with a string "name").
func guarded(t *testing.T) *route.Route {
	t.Helper()
	rule, err := policy.Compile(`request.headers["x-ok"] == ["yes"]`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Compile(map[string][]byte{
		"b.json": []byte(`{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}`),
	}, "b.json")
	if err != nil {
		t.Fatal(err)
	}
	return &route.Route{Method: "POST", Path: "/things/{id}", App: "shop", Function: "things",
		Rule: rule, Schema: schema.NewRequest([]string{"application/json"}, s["b.json"], nil, nil)}
}

func TestAdmitInOrder(t *testing.T) {
	rt := guarded(t)
	key := func(scopes ...string) *sandbox.Identity {
		return &sandbox.Identity{Scheme: manifest.AuthAPIKey, Subject: "k1", Scopes: scopes}
	}
	okHeaders := map[string][]string{"X-Ok": {"yes"}, "Content-Type": {"application/json"}}
	for _, tt := range []struct {
		name    string
		ident   *sandbox.Identity
		headers map[string][]string
		body    string
		maxBody int64
		step    Step // "" when admitted
		status  int
		kind    error
		logMsg  string
		reason  string
	}{
		{"admitted", key(), okHeaders, `{"name":"pen"}`, 64, "", 200, nil, "", ""},
		{"scope of another app", key("other"), okHeaders, `{"name":"pen"}`, 64, StepScope, 403, aegis.ErrPermissionDenied, "authorization denied", "key scope"},
		{"scope names the function", key("shop/things"), okHeaders, `{"name":"pen"}`, 64, "", 200, nil, "", ""},
		{"rule before the body is read", key(), map[string][]string{"X-Ok": {"no"}}, strings.Repeat("x", 100), 64, StepRule, 403, aegis.ErrPermissionDenied, "authorization denied", "rule false"},
		{"body cap before the schema", key(), okHeaders, `{"name":"` + strings.Repeat("x", 100) + `"}`, 64, StepBody, 413, aegis.ErrLimitExceeded, "", ""},
		{"schema", key(), okHeaders, `{"nom":"SECRET"}`, 64, StepSchema, 400, aegis.ErrInvalidArgument, "request refused by schema", "request does not match schema: body.name: required"},
		{"media type", key(), map[string][]string{"X-Ok": {"yes"}, "Content-Type": {"text/plain"}}, `{"name":"pen"}`, 64, StepSchema, 415, aegis.ErrInvalidArgument, "request refused by schema", "unsupported media type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := logbuf.New()
			m := metrics.New()
			a := New(slog.New(slog.NewJSONHandler(logs, nil)), m)
			read := 0
			body, refused := a.Admit(context.Background(), &Request{
				Route: rt, Params: map[string]string{"id": "7"}, Method: "POST", Path: "/things/7",
				Headers: tt.headers, Identity: tt.ident, MaxBody: tt.maxBody, RequestID: "r-1", Remote: "127.0.0.1:9",
			}, func(limit int64) ([]byte, error) { read++; return BodyOf([]byte(tt.body))(limit) })
			if tt.step == "" {
				if refused != nil || string(body) != tt.body {
					t.Fatalf("refused %+v, body %q", refused, body)
				}
				if lines := logs.Lines(`"security":true`); len(lines) != 0 {
					t.Errorf("an admitted request was logged: %v", lines)
				}
				return
			}
			if refused == nil {
				t.Fatal("admitted")
			}
			if refused.Step != tt.step || refused.Status != tt.status || !errors.Is(refused, tt.kind) {
				t.Errorf("refusal %+v, want step %s, status %d, kind %v", refused, tt.step, tt.status, tt.kind)
			}
			if (tt.step == StepScope || tt.step == StepRule) && read != 0 {
				t.Errorf("the body was read for a caller who may not call")
			}
			if strings.Contains(refused.Message, "SECRET") || strings.Contains(refused.Message, "rule") && tt.step == StepRule {
				t.Errorf("message %q says too much", refused.Message)
			}
			if tt.logMsg == "" {
				return
			}
			lines := logs.Messages(tt.logMsg)
			if len(lines) != 1 {
				t.Fatalf("%d %q lines:\n%s", len(lines), tt.logMsg, logs)
			}
			l := lines[0]
			if l[logkey.Security] != true || l[logkey.RequestID] != "r-1" || l[logkey.App] != "shop" || l[logkey.Function] != "things" ||
				l[logkey.Route] != "POST /things/{id}" || l[logkey.Remote] != "127.0.0.1:9" || !strings.HasPrefix(l[logkey.Reason].(string), tt.reason) {
				t.Errorf("log line %v", l)
			}
			if tt.step == StepSchema && m.SchemaViolations("shop", "things", "POST /things/{id}", l[logkey.Kind].(string)) != 1 {
				t.Errorf("schema refusal not counted")
			}
		})
	}
}

// A body that cannot be read is a 400 with nothing of the cause.
func TestUnreadableBody(t *testing.T) {
	a := New(nil, nil)
	_, refused := a.Admit(context.Background(), &Request{Route: &route.Route{App: "a", Function: "f"}, MaxBody: 10},
		func(int64) ([]byte, error) { return nil, errors.New("read tcp: SECRET-DETAIL of the connection") })
	if refused == nil || refused.Status != http.StatusBadRequest || strings.Contains(refused.Message, "SECRET") {
		t.Fatalf("refusal %+v", refused)
	}
}

// A function calling another is named as the caller, and a rule written
// for outside callers (claims) denies it rather than erroring open.
func TestFunctionCaller(t *testing.T) {
	rule, err := policy.Compile(`identity.claims.role == "admin"`)
	if err != nil {
		t.Fatal(err)
	}
	logs := logbuf.New()
	a := New(slog.New(slog.NewJSONHandler(logs, nil)), nil)
	_, refused := a.Admit(context.Background(), &Request{
		Route: &route.Route{Method: "POST", Path: "/strict", App: "diary", Function: "strict", Rule: rule}, Method: "POST", Path: "/strict",
		Identity: &sandbox.Identity{Scheme: sandbox.SchemeFunction, Subject: "diary/save"}, Caller: "diary/save",
	}, BodyOf(nil))
	if refused == nil || refused.Step != StepRule {
		t.Fatalf("refusal %+v", refused)
	}
	if l := logs.Messages("authorization denied"); len(l) != 1 || l[0][logkey.Caller] != "diary/save" {
		t.Errorf("log %v", l)
	}
}
