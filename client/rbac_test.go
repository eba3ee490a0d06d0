package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// seen is one request as the fake server got it.
type seen struct {
	method, path, otp, auth, body string
}

func fakeAdmin(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get(OTPHeader), r.Header.Get("Authorization"), string(b)})
		mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func TestWithOTPSendsTheCode(t *testing.T) {
	srv, requests := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ctx := context.Background()
	if err := New(srv.URL, "tok", WithOTP("123456")).DeleteApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := New(srv.URL, "tok").DeleteApp(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	got := requests()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	if got[0] != (seen{"DELETE", "/v1/apps/shop", "123456", "Bearer tok", ""}) {
		t.Errorf("with OTP: %+v", got[0])
	}
	if got[1].otp != "" || got[1].path != "/v1/apps/a%2Fb" {
		t.Errorf("without OTP: %+v", got[1])
	}
}

func TestAdminTokenCalls(t *testing.T) {
	srv, requests := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/tokens":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"name":"ci","role":"deployer","apps":["shop"],"token":"aegisadm_x"}`)
		case "GET /v1/tokens":
			_, _ = io.WriteString(w, `[{"name":"ci","role":"deployer","apps":["shop"],"created_at":"2025-01-02T03:04:05Z","revoked":false}]`)
		case "DELETE /v1/tokens/ci":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"forbidden: role viewer may not deploy","request_id":"r"}`)
		}
	})
	c := New(srv.URL, "tok")
	ctx := context.Background()
	tok, err := c.CreateAdminToken(ctx, "ci", RoleDeployer, []string{"shop"})
	if err != nil || tok.Token != "aegisadm_x" || tok.Role != "deployer" {
		t.Fatalf("create: %+v, %v", tok, err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(requests()[0].body), &body); err != nil || body["name"] != "ci" || body["role"] != "deployer" {
		t.Errorf("create body %q", requests()[0].body)
	}
	list, err := c.AdminTokens(ctx)
	if err != nil || len(list) != 1 || list[0].Apps[0] != "shop" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if err := c.RevokeAdminToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Deploy(ctx, "shop", DeployRequest{})
	var apiErr *APIError
	if !errors.Is(err, ErrPermissionDenied) || !errors.As(err, &apiErr) || apiErr.Message != "forbidden: role viewer may not deploy" {
		t.Errorf("403: %v", err)
	}
}

func TestMFACalls(t *testing.T) {
	srv, requests := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/mfa/enroll":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"uri":"otpauth://totp/Aegis:admin?secret=ABC&issuer=Aegis"}`)
		case "POST /v1/mfa/confirm", "GET /v1/mfa":
			_, _ = io.WriteString(w, `{"enrolled":true,"pending":false,"step_up":"auto","required":true}`)
		}
	})
	c := New(srv.URL, "tok")
	ctx := context.Background()
	e, err := c.EnrollMFA(ctx)
	if err != nil || e.URI == "" {
		t.Fatalf("enroll: %+v, %v", e, err)
	}
	st, err := c.ConfirmMFA(ctx, "123456")
	if err != nil || !st.Enrolled || !st.Required || st.StepUp != "auto" {
		t.Fatalf("confirm: %+v, %v", st, err)
	}
	if got := requests()[1].body; got != `{"code":"123456"}` {
		t.Errorf("confirm body %q", got)
	}
	if st, err := c.MFAStatus(ctx); err != nil || !st.Enrolled {
		t.Fatalf("status: %+v, %v", st, err)
	}
}
