package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/server"
)

// as is a client of in's admin API with another token (and options).
func as(in *instance, token string, opts ...client.Option) *client.Client {
	return client.New(in.srv.AdminURL(), token, opts...)
}

// deployText uploads the probe module with c and deploys manifest text,
// every function running the probe.
func deployText(t *testing.T, c *client.Client, text string) (*client.DeployResult, error) {
	t.Helper()
	wasm := probeModule(t)
	sum := sha256.Sum256(wasm)
	hexsum := hex.EncodeToString(sum[:])
	ctx := context.Background()
	if err := c.UploadModule(ctx, hexsum, wasm); err != nil {
		return nil, err
	}
	app, fns := appAndFunctions(text)
	modules := map[string]string{}
	for _, fn := range fns {
		modules[fn] = hexsum
	}
	return c.Deploy(ctx, app, client.DeployRequest{Manifest: text, File: "aegis.yaml", Modules: modules})
}

func oneRouteApp(app string) string {
	return "app: " + app + `
functions:
  hello:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/` + app + `/{op}" }
`
}

// wantRefused checks err is an API error with status and a message holding
// msg, and returns its request id.
func wantRefused(t *testing.T, what string, err error, status int, msg string) string {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != status || !strings.Contains(apiErr.Message, msg) {
		t.Fatalf("%s: %v, want HTTP %d with %q", what, err, status, msg)
	}
	if apiErr.RequestID == "" {
		t.Errorf("%s: no request id", what)
	}
	return apiErr.RequestID
}

// wantDenialLogged checks the one security line of a refused admin call.
func wantDenialLogged(t *testing.T, in *instance, reqID, msg, token string) {
	t.Helper()
	lines := in.logs.Lines(`"`+msg+`"`, reqID)
	if len(lines) != 1 {
		t.Fatalf("want one %q line for request %s, got %d", msg, reqID, len(lines))
	}
	l := lines[0]
	if l["security"] != true || l["request_id"] != reqID || l["level"] != "WARN" || (token != "" && l["token_name"] != token) {
		t.Errorf("security line: %v", l)
	}
}

// TestRBAC: roles and app sets on one server, without step-up.
func TestRBAC(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	ctx := context.Background()
	for _, app := range []string{"rbac-x", "rbac-y"} {
		if _, err := deployText(t, in.admin, oneRouteApp(app)); err != nil {
			t.Fatalf("deploy %s: %v", app, err)
		}
	}
	token := func(name, role string, apps ...string) string {
		t.Helper()
		tok, err := in.admin.CreateAdminToken(ctx, name, role, apps)
		if err != nil {
			t.Fatalf("create token %s: %v", name, err)
		}
		return tok.Token
	}
	viewer := as(in, token("viewer", client.RoleViewer))
	operator := as(in, token("operator", client.RoleOperator))
	deployerX := as(in, token("deployer-x", client.RoleDeployer, "rbac-x"))

	t.Run("viewer token trying to deploy", func(t *testing.T) {
		wasm := probeModule(t)
		sum := sha256.Sum256(wasm)
		_, err := viewer.Deploy(ctx, "rbac-x", client.DeployRequest{Manifest: oneRouteApp("rbac-x"),
			Modules: map[string]string{"hello": hex.EncodeToString(sum[:])}})
		reqID := wantRefused(t, "viewer deploy", err, http.StatusForbidden, "forbidden: role viewer may not deploy")
		if !errors.Is(err, client.ErrPermissionDenied) {
			t.Errorf("403 is not ErrPermissionDenied: %v", err)
		}
		wantDenialLogged(t, in, reqID, "admin call denied", "viewer")
		// Nor may it upload what a deploy needs.
		wantRefused(t, "viewer upload", viewer.UploadModule(ctx, hex.EncodeToString(sum[:]), wasm), http.StatusForbidden, "may not upload modules")
	})

	t.Run("viewer lists apps", func(t *testing.T) {
		apps, err := viewer.Apps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range apps {
			names = append(names, a.App)
		}
		if !slices.Contains(names, "rbac-x") || !slices.Contains(names, "rbac-y") {
			t.Errorf("viewer sees %v", names)
		}
		if _, err := viewer.AdminTokens(ctx); !errors.Is(err, client.ErrPermissionDenied) {
			t.Errorf("viewer lists admin tokens: %v", err)
		}
	})

	t.Run("deployer limited to one app", func(t *testing.T) {
		// A second route, so the deploy makes a version (the same manifest
		// again would be answered unchanged).
		second := oneRouteApp("rbac-x") + `      - http: { method: GET, path: "/rbac-x/{op}" }
`
		if res, err := deployText(t, deployerX, second); err != nil || res.Unchanged {
			t.Fatalf("deploy of its own app: %+v, %v", res, err)
		}
		_, err := deployText(t, deployerX, oneRouteApp("rbac-y"))
		reqID := wantRefused(t, "deploy of another app", err, http.StatusForbidden, `may not act on app "rbac-y"`)
		wantDenialLogged(t, in, reqID, "admin call denied", "deployer-x")
		apps, err := deployerX.Apps(ctx)
		if err != nil || len(apps) != 1 || apps[0].App != "rbac-x" {
			t.Errorf("deployer's listing: %+v, %v", apps, err)
		}
		routes, err := deployerX.Routes(ctx)
		for _, r := range routes {
			if r.App != "rbac-x" {
				t.Errorf("deployer sees route %+v", r)
			}
		}
		if err != nil {
			t.Error(err)
		}
		if _, err := deployerX.Keys(ctx); !errors.Is(err, client.ErrPermissionDenied) {
			t.Errorf("restricted token lists API keys: %v", err)
		}
	})

	t.Run("metrics need a token without an app set", func(t *testing.T) {
		scrape := func(token string) int {
			req, _ := http.NewRequest("GET", in.srv.AdminURL()+"/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if st := scrape(token("scraper", client.RoleViewer)); st != http.StatusOK {
			t.Errorf("viewer scraping metrics: %d", st)
		}
		if st := scrape(token("scraper-x", client.RoleViewer, "rbac-x")); st != http.StatusForbidden {
			t.Errorf("app-limited viewer scraping every app's metrics: %d", st)
		}
	})

	t.Run("operator rolls back but creates no API key", func(t *testing.T) {
		// rbac-x has two versions by now (root's, then the deployer's).
		res, err := operator.Rollback(ctx, "rbac-x")
		if err != nil || res.Version != "v1" {
			t.Fatalf("operator rollback: %+v, %v", res, err)
		}
		_, err = operator.CreateKey(ctx, keyName("by-operator"))
		reqID := wantRefused(t, "operator creates a key", err, http.StatusForbidden, "role operator may not manage api keys")
		wantDenialLogged(t, in, reqID, "admin call denied", "operator")
	})

	t.Run("tokens through the CLI, and a revoked token", func(t *testing.T) {
		code, out, errs := aegisCLI(t, in, "tokens", "create", "cli-viewer", "--role", "viewer", "-o", "json")
		if code != 0 {
			t.Fatalf("tokens create: exit %d %s", code, errs)
		}
		var created map[string]string
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatalf("tokens create -o json: %q", out)
		}
		if len(created) != 3 || created["name"] != "cli-viewer" || created["role"] != "viewer" || !strings.HasPrefix(created["token"], "aegisadm_") {
			t.Fatalf("tokens create -o json = %q, want exactly name, role and token", out)
		}
		tok := created["token"]
		if _, err := as(in, tok).Apps(ctx); err != nil {
			t.Fatalf("new token: %v", err)
		}
		code, out, _ = aegisCLI(t, in, "tokens", "list", "-o", "json")
		if code != 0 || !strings.Contains(out, `"cli-viewer"`) || strings.Contains(out, tok) {
			t.Errorf("tokens list: %d %s", code, out)
		}
		if code, _, errs := aegisCLI(t, in, "tokens", "create", "x", "--role", "superuser"); code != 2 || !strings.Contains(errs, "must be viewer, operator, deployer or admin") {
			t.Errorf("bad role: exit %d %q", code, errs)
		}
		if code, _, errs := aegisCLI(t, in, "tokens", "revoke", "cli-viewer"); code != 0 {
			t.Fatalf("tokens revoke: %d %s", code, errs)
		}
		_, err := as(in, tok).Apps(ctx)
		reqID := wantRefused(t, "revoked token", err, http.StatusUnauthorized, "unauthorized")
		if l := in.logs.Lines(`"admin authentication failed"`, reqID, `"reason":"revoked"`, `"security":true`); len(l) != 1 {
			t.Errorf("want one security line with reason revoked, got %v", l)
		}
	})
	// Not one token in the log.
	for _, c := range []string{"aegisadm_"} {
		if l := in.logs.Lines(c); len(l) > 0 {
			t.Errorf("a token reached the log: %v", l[0])
		}
	}
}

// totpSecret reads the secret out of an otpauth URI.
func totpSecret(t *testing.T, uri string) string {
	t.Helper()
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatalf("otpauth URI %q: %v", uri, err)
	}
	return key.Secret()
}

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestStepUpMFA: with an authenticator enrolled, dangerous changes need a
// current code, once.
//
// Codes are taken one time step apart (the previous step for the
// enrollment, the current one, the next one), since each accepted code
// uses its step up and the server accepts one step of skew either way.
func TestStepUpMFA(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	ctx := context.Background()
	app := oneRouteApp("stepup")
	if _, err := deployText(t, in.admin, app); err != nil {
		t.Fatal(err)
	}

	e, err := in.admin.EnrollMFA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secret := totpSecret(t, e.URI)
	if st, err := in.admin.ConfirmMFA(ctx, codeAt(t, secret, time.Now().Add(-30*time.Second))); err != nil || !st.Enrolled || !st.Required {
		t.Fatalf("confirm: %+v, %v", st, err)
	}
	if l := in.logs.Lines(secret); len(l) > 0 {
		t.Fatalf("the TOTP secret reached the log: %v", l[0])
	}
	code, out, _ := aegisCLI(t, in, "mfa", "status", "-o", "json")
	if code != 0 || !strings.Contains(out, `"enrolled": true`) || strings.Contains(out, secret) {
		t.Errorf("mfa status: %d %s", code, out)
	}

	public := strings.Replace(app, `path: "/stepup/{op}" }`, `path: "/stepup/{op}", public: true }`, 1)
	t.Run("dangerous admin change without TOTP", func(t *testing.T) {
		_, err := deployText(t, in.admin, public)
		reqID := wantRefused(t, "public route without a code", err, http.StatusForbidden, "route POST /stepup/{op} becomes public")
		if !errors.Is(err, client.ErrStepUpRequired) {
			t.Errorf("the refusal is not marked as wanting a code (Aegis-Step-Up): %v", err)
		}
		if !strings.Contains(err.Error(), "--otp") {
			t.Errorf("refusal does not say how to pass a code: %v", err)
		}
		wantDenialLogged(t, in, reqID, "admin call denied", "root")
		if st, _, _ := call(t, in.gateway, "POST", "/stepup/echo", "", []byte("x")); st != http.StatusUnauthorized {
			t.Errorf("route after the refused deploy: %d, want it still private (401)", st)
		}
	})

	now := time.Now()
	t.Run("wrong code", func(t *testing.T) {
		_, err := deployText(t, as(in, in.srv.AdminToken(), client.WithOTP(codeAt(t, secret, now.Add(time.Hour)))), public)
		reqID := wantRefused(t, "public route with a wrong code", err, http.StatusForbidden, "wrong, expired or already used")
		if errors.Is(err, client.ErrStepUpRequired) {
			t.Errorf("a wrong code is marked as a missing one: %v", err)
		}
		if l := in.logs.Lines(reqID, `"step-up wrong code"`, `"security":true`); len(l) != 1 {
			t.Errorf("security line: %v", l)
		}
	})

	current := codeAt(t, secret, now)
	publicVersion := 0
	t.Run("correct code, then replayed", func(t *testing.T) {
		res, err := deployText(t, as(in, in.srv.AdminToken(), client.WithOTP(current)), public)
		if err != nil {
			t.Fatalf("public route with a current code: %v", err)
		}
		publicVersion, _ = strconv.Atoi(strings.TrimPrefix(res.Version, "v"))
		if st, body, _ := call(t, in.gateway, "POST", "/stepup/echo", "", []byte("open")); st != 200 || string(body) != "open" {
			t.Fatalf("public route: %d %s", st, body)
		}
		// Redeploying what is active changes nothing dangerous: no code.
		if res, err := deployText(t, in.admin, public); err != nil || !res.Unchanged {
			t.Fatalf("same manifest again: %+v, %v; want it answered unchanged", res, err)
		}
		another := public + `      - http: { method: GET, path: "/stepup-get/{op}", public: true }
`
		_, err = deployText(t, as(in, in.srv.AdminToken(), client.WithOTP(current)), another)
		reqID := wantRefused(t, "replayed code", err, http.StatusForbidden, "already used")
		if l := in.logs.Lines(reqID, `"step-up replayed"`); len(l) != 1 {
			t.Errorf("security line: %v", l)
		}
	})

	t.Run("rollback to a public route", func(t *testing.T) {
		// Tightening needs no code; going back to the public version does.
		if _, err := deployText(t, in.admin, app); err != nil {
			t.Fatalf("deploy without the public route: %v", err)
		}
		_, err := in.admin.Rollback(ctx, "stepup")
		reqID := wantRefused(t, "rollback without a code", err, http.StatusForbidden, "route POST /stepup/{op} becomes public")
		wantDenialLogged(t, in, reqID, "admin call denied", "root")
		if st, _, _ := call(t, in.gateway, "POST", "/stepup/echo", "", []byte("x")); st != http.StatusUnauthorized {
			t.Errorf("route after the refused rollback: %d, want it still private (401)", st)
		}
		// Any version a rollback goes to is compared the same way: to the
		// public one by number needs a code, to the first (private) one not.
		_, err = in.admin.RollbackTo(ctx, "stepup", publicVersion)
		wantRefused(t, "rollback --to the public version without a code", err, http.StatusForbidden, "route POST /stepup/{op} becomes public")
		if res, err := in.admin.RollbackTo(ctx, "stepup", 1); err != nil || res.Version != "v1" {
			t.Fatalf("rollback --to v1, which opens nothing: %+v, %v", res, err)
		}
	})

	t.Run("delete app", func(t *testing.T) {
		code, _, errs := aegisCLI(t, in, "apps", "delete", "stepup")
		if code != 1 || !strings.Contains(errs, "step-up required (delete app stepup)") || !strings.Contains(errs, "HTTP 403") {
			t.Fatalf("delete without a code: exit %d %q", code, errs)
		}
		next := codeAt(t, secret, now.Add(30*time.Second))
		code, out, errs := aegisCLI(t, in, "--otp", next, "apps", "delete", "stepup")
		if code != 0 || out != "deleted app stepup\n" {
			t.Fatalf("delete with a code: exit %d %q %q", code, out, errs)
		}
		if st, _, _ := call(t, in.gateway, "POST", "/stepup/echo", "", []byte("x")); st != http.StatusNotFound {
			t.Errorf("route of the deleted app: %d, want 404", st)
		}
		apps, err := in.admin.Apps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			if a.App == "stepup" {
				t.Error("deleted app still listed")
			}
		}
		// Re-enrolling is itself a step-up change; the codes of this test
		// are used up, so it is refused.
		if _, err := in.admin.EnrollMFA(ctx); !errors.Is(err, client.ErrPermissionDenied) {
			t.Errorf("re-enrolling without a code: %v", err)
		}
	})
}

// TestStepUpOffMFA: a server started with --step-up off asks for no code,
// even with an authenticator enrolled (here through the CLI, which shows
// the URI and a QR code and reads the code from stdin).
func TestStepUpOffMFA(t *testing.T) {
	dir := t.TempDir()
	off := func(c *server.Config) { c.StepUp = "off" }
	in := startServerWith(t, dir, off)
	ctx := context.Background()

	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr strings.Builder
	env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken()}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"mfa", "enroll"}, stdinR, stdoutW, &stderr, func(k string) string { return env[k] })
		stdoutW.Close()
	}()
	sc := bufio.NewScanner(stdoutR)
	var uri string
	qr := 0
	for uri == "" && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "otpauth://"):
			uri = line
		case strings.ContainsAny(line, "█▀▄"):
			qr++
		}
	}
	if uri == "" || qr < 10 {
		t.Fatalf("mfa enroll printed no URI or QR code (%d QR lines)", qr)
	}
	secret := totpSecret(t, uri)
	if _, err := io.WriteString(stdinW, codeAt(t, secret, time.Now())+"\n"); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if code := <-done; code != 0 || !strings.Contains(rest.String(), "authenticator enrolled (step-up off)") {
		t.Fatalf("mfa enroll: exit %d, stdout %q, stderr %q", code, rest.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "Code shown by the app: ") {
		t.Errorf("no prompt on stderr: %q", stderr.String())
	}

	app := `app: stepoff
functions:
  hello:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/stepoff/{op}", public: true }
    limits: { timeout: 30s }
`
	if _, err := deployText(t, in.admin, app); err != nil {
		t.Fatalf("dangerous deploy with step-up off: %v", err)
	}
	if err := in.admin.DeleteApp(ctx, "stepoff"); err != nil {
		t.Fatalf("delete with step-up off: %v", err)
	}
	if st, err := in.admin.MFAStatus(ctx); err != nil || !st.Enrolled || st.Required || st.StepUp != "off" {
		t.Errorf("status: %+v, %v", st, err)
	}

	// A deleted app stays deleted across a restart, and deploying its name
	// again starts over at v1.
	in.close(t)
	again := startServerWith(t, dir, off)
	defer again.close(t)
	if apps, err := again.admin.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("apps after restart: %+v, %v", apps, err)
	}
	if st, _, _ := call(t, again.gateway, "POST", "/stepoff/echo", "", []byte("x")); st != http.StatusNotFound {
		t.Errorf("route of the deleted app after restart: %d", st)
	}
	res, err := deployText(t, again.admin, app)
	if err != nil || res.Version != "v1" {
		t.Fatalf("deploy after delete: %+v, %v", res, err)
	}
}
