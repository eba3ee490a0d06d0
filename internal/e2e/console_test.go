package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/browser"
)

// consoleFixture is a server of its own (its guard blocks 127.0.0.1 on
// purpose) running the travel diary with an enrolled authenticator, and a
// second server sharing its NATS, as a cluster's would.
type consoleFixture struct {
	in, second *instance
	diaryKey   string
	probeKey   string
	otpSecret  string
	origin     string
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	t.Helper()
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Guard.Rules = guardRules() })
	t.Cleanup(func() { in.close(t) })
	f := &consoleFixture{in: in, origin: in.srv.AdminURL()}
	f.diaryKey = diaryKey(t, in, "console-diary")
	// The probe app, for a dead letter (its topic jobs.fail always fails).
	deployProbe(t, in, "testdata/probe.yaml")
	pk, err := in.admin.CreateKey(context.Background(), "console-probe")
	if err != nil {
		t.Fatal(err)
	}
	f.probeKey = pk.Key
	// Enrolled after the deploys, which open routes and grant secrets:
	// dangerous changes.
	ctx := context.Background()
	e, err := in.admin.EnrollMFA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.otpSecret = totpSecret(t, e.URI)
	if _, err := in.admin.ConfirmMFA(ctx, codeAt(t, f.otpSecret, time.Now().Add(-30*time.Second))); err != nil {
		t.Fatal(err)
	}
	f.second = startServerWith(t, t.TempDir(), func(c *server.Config) { shareNATS(c, in) })
	t.Cleanup(func() { f.second.close(t) })
	return f
}

// eval runs a script in the page and returns its value.
func eval[T any](t *testing.T, b *browser.Browser, script string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx(), 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %q: %v", script, err)
	}
	return v
}

// checkConsolePage checks what every console page must hold: the strict
// policy on the document, no violation of it, nothing loaded from another
// origin, a main landmark and one h1.
func checkConsolePage(t *testing.T, b *browser.Browser, f *consoleFixture, what string) {
	t.Helper()
	h := b.LastDocumentHeaders()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %s", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") {
		t.Errorf("%s: Content-Security-Policy %q allows too much", what, csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: X-Frame-Options %q, Cache-Control %q", what, h.Get("X-Frame-Options"), h.Get("Cache-Control"))
	}
	if v := b.Violations(); len(v) > 0 {
		t.Errorf("%s: policy violations: %v", what, v)
	}
	b.CheckSameOrigin(t, f.origin)
	if n := eval[int](t, b, `document.querySelectorAll("main h1").length + document.querySelectorAll("main").length`); n != 2 {
		t.Errorf("%s: want one main landmark with one h1", what)
	}
	if n := eval[int](t, b, `document.querySelectorAll("script:not([src]), [style], [onclick], [onload], [onsubmit]").length`); n != 0 {
		t.Errorf("%s: %d inline scripts, styles or handlers", what, n)
	}
	// Keyboard: the first stop of the Tab key skips to the content.
	if !eval[bool](t, b, `document.querySelector("a[href], button, input:not([type=hidden]), select, textarea") === document.querySelector("a.skip[href='#main']")`) {
		t.Errorf("%s: the first thing Tab reaches is not the skip link", what)
	}
}

// scriptsOff turns the page's JavaScript off (on again with false).
func scriptsOff(off bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
		return chromedp.Void{}, err
	}
}

func (f *consoleFixture) signIn(t *testing.T, b *browser.Browser, token string) {
	t.Helper()
	b.Navigate(t, f.origin+"/console/login")
	b.Run(t, chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("form.signin")),
		chromedp.WaitVisible(chromedp.CSS("#who")))
}

// TestConsole drives the console in Chromium: sign-in, the travel diary
// and its call graph, an upload's trace, live logs, usage, audit, a key
// created and revoked, a block lifted with step-up, a viewer who cannot
// act, a forged cross-site post refused, and the policy on every page.
func TestConsole(t *testing.T) {
	f := newConsoleFixture(t)
	in := f.in
	b := browser.Start(t)
	ctx := context.Background()

	t.Run("sign-in", func(t *testing.T) {
		b.Navigate(t, f.origin+"/console/")
		if u := eval[string](t, b, `location.pathname + location.search`); u != "/console/login?next=%2Fconsole%2F" {
			t.Fatalf("signed out, /console/ went to %s", u)
		}
		checkConsolePage(t, b, f, "login")
		b.Screenshot(t, "console-login")
		b.Run(t, chromedp.SetValue(chromedp.CSS("#token"), "not-a-token"), chromedp.Submit(chromedp.CSS("form.signin")),
			chromedp.WaitVisible(chromedp.CSS("#login-message")))
		if msg := b.Text(t, "#login-message"); !strings.Contains(msg, "not accepted") {
			t.Errorf("wrong token: %q", msg)
		}
		time.Sleep(300 * time.Millisecond) // the throttle's first wait
		f.signIn(t, b, in.srv.AdminToken())
		if who := b.Text(t, "#who"); !strings.Contains(who, "root") || !strings.Contains(who, "admin") {
			t.Errorf("signed in as %q", who)
		}
		if apps := b.Text(t, "#apps"); !strings.Contains(apps, "travel-diary") {
			t.Errorf("overview apps: %q", apps)
		}
		checkConsolePage(t, b, f, "overview")
		b.Screenshot(t, "console-overview")
	})

	// One upload, traced from the caller's traceparent.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	entry := map[string]string{"title": "Ghent", "text": "Canals.", "image": base64.StdEncoding.EncodeToString(samplePNG(t, 64, 48))}
	if st, body, _ := call(t, in.gateway, "POST", "/entries", f.diaryKey, entry, "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"); st != 201 {
		t.Fatalf("POST /entries: %d %s", st, body)
	}
	traceTree(t, in, traceID, 4)
	// The call graph's observations reach its store every 2 s: wait for
	// the upload's hops before the page is read.
	eventually(t, 20*time.Second, "the upload's edges observed in the call graph", func() bool {
		g, err := in.admin.Graph(ctx, "travel-diary")
		if err != nil {
			t.Fatal(err)
		}
		observed := 0
		for _, e := range g.Edges {
			if e.Observed && (e.From == "make-thumbnail" && e.To == "thumbnail.created" || e.From == "thumbnail.created" && e.To == "index-entry") {
				observed++
			}
		}
		return observed == 2
	})

	t.Run("app and call graph", func(t *testing.T) {
		b.Navigate(t, f.origin+"/console/")
		b.Run(t, chromedp.Click(chromedp.CSS(`#apps a[href="/console/apps/travel-diary"]`)), chromedp.WaitVisible(chromedp.CSS("#callgraph svg")))
		nodes := eval[[]string](t, b, `[...document.querySelectorAll("#callgraph svg g.node")].map(n => n.dataset.node)`)
		for _, fn := range []string{"function:save-entry", "function:make-thumbnail", "function:index-entry"} {
			if !slices.Contains(nodes, fn) {
				t.Errorf("call graph lacks %s: %v", fn, nodes)
			}
		}
		edges := eval[[]string](t, b, `[...document.querySelectorAll("#callgraph svg g.edge[data-from]")].map(e => e.dataset.from + " -> " + e.dataset.to + " " + e.getAttribute("class"))`)
		for _, want := range []string{
			"function:save-entry -> topic:image.saved edge declared observed",
			"topic:image.saved -> function:make-thumbnail edge declared observed",
			"function:make-thumbnail -> topic:thumbnail.created edge declared observed",
			"topic:thumbnail.created -> function:index-entry edge declared observed",
		} {
			if !slices.Contains(edges, want) {
				t.Errorf("call graph lacks the edge %q: %v", want, edges)
			}
		}
		if routes := b.Text(t, "#routes"); !strings.Contains(routes, "POST /entries") || !strings.Contains(routes, "api-key") {
			t.Errorf("routes: %q", routes)
		}
		if fn := b.Text(t, "#fn-save-entry"); !strings.Contains(fn, "kv write: entries") || !strings.Contains(fn, "new-entry.json") {
			t.Errorf("save-entry's grants and schema: %q", fn)
		}
		checkConsolePage(t, b, f, "app")
		b.Screenshot(t, "console-app")
	})

	t.Run("follow an upload's trace", func(t *testing.T) {
		b.Navigate(t, f.origin+"/console/traces?route="+url.QueryEscape("POST /entries"))
		b.Run(t, chromedp.Click(chromedp.CSS(`#recent-traces a[href="/console/traces/`+traceID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#hops")))
		hops := b.Text(t, "#hops")
		for _, fn := range []string{"travel-diary/save-entry", "travel-diary/make-thumbnail", "travel-diary/index-entry"} {
			if !strings.Contains(hops, fn) {
				t.Errorf("trace lacks %s: %q", fn, hops)
			}
		}
		if n := eval[int](t, b, `document.querySelectorAll("#waterfall svg g.span").length`); n < 3 {
			t.Errorf("waterfall has %d spans", n)
		}
		checkConsolePage(t, b, f, "trace")
		b.Screenshot(t, "console-trace")
		b.Navigate(t, f.origin+"/console/traces?id=nonsense")
		if msg := b.Text(t, "main .problem"); !strings.Contains(msg, "32 lower-case") {
			t.Errorf("bad trace id: %q", msg)
		}
	})

	t.Run("read-only pages read without JavaScript", func(t *testing.T) {
		b.Run(t, scriptsOff(true))
		defer b.Run(t, scriptsOff(false))
		for page, want := range map[string][2]string{
			"/console/":                      {"#apps", "travel-diary"},
			"/console/apps/travel-diary":     {"#routes", "POST /entries"},
			"/console/traces/" + traceID:     {"#hops", "travel-diary/index-entry"},
			"/console/logs?app=travel-diary": {"#log-lines", "travel-diary/save-entry"},
			"/console/usage":                 {"#usage", "save-entry"},
			"/console/audit":                 {"#audit-status", "verifies"},
			"/console/guard":                 {"main", "Blocks in force"},
		} {
			b.Navigate(t, f.origin+page)
			if got := b.Text(t, want[0]); !strings.Contains(got, want[1]) {
				t.Errorf("%s without JavaScript: %s reads %q", page, want[0], got)
			}
		}
		b.Navigate(t, f.origin+"/console/logs")
		if eval[bool](t, b, `!document.getElementById("follow").hidden`) {
			t.Error("without JavaScript the logs page offers a follow button that cannot work")
		}
	})

	t.Run("logs follow live", func(t *testing.T) {
		b.Navigate(t, f.origin+"/console/logs?app=travel-diary")
		const getEntryRows = `[...document.querySelectorAll("#log-lines tr")].some(r => r.textContent.includes("travel-diary/get-entry"))`
		if eval[bool](t, b, getEntryRows) {
			t.Fatal("get-entry already ran: the follow would prove nothing")
		}
		b.Run(t, chromedp.Click(chromedp.CSS("#follow")), chromedp.WaitVisible(chromedp.CSS(`#follow[aria-pressed="true"]`)))
		if st, _, _ := call(t, in.gateway, "GET", "/entries/followed-"+fmt.Sprint(time.Now().UnixNano()), f.diaryKey, nil); st == 401 {
			t.Fatal("diary key refused")
		}
		eventually(t, 20*time.Second, "the followed invocation on the page", func() bool {
			return eval[bool](t, b, getEntryRows)
		})
		checkConsolePage(t, b, f, "logs")
		b.Screenshot(t, "console-logs")
		b.Run(t, chromedp.Click(chromedp.CSS("#follow")))
	})

	t.Run("usage and audit", func(t *testing.T) {
		b.Navigate(t, f.origin+"/console/usage")
		if n := eval[int](t, b, `document.querySelectorAll("#chart-functions svg g.bar").length`); n < 3 {
			t.Errorf("usage chart has %d bars", n)
		}
		checkConsolePage(t, b, f, "usage")
		b.Screenshot(t, "console-usage")
		b.Navigate(t, f.origin+"/console/audit")
		if st := b.Text(t, "#audit-status"); !strings.Contains(st, "The chain verifies") {
			t.Errorf("audit status: %q", st)
		}
		checkConsolePage(t, b, f, "audit")
		b.Screenshot(t, "console-audit")
		export := eval[string](t, b, `fetch("/console/audit/export").then(async r => r.status + " " + r.headers.get("content-disposition") + " " + (await r.text()).split("\n").length)`)
		if !strings.HasPrefix(export, "200 attachment;") {
			t.Errorf("audit export: %s", export)
		}
	})

	t.Run("replay a dead letter", func(t *testing.T) {
		o, reqID := probe(t, in.gateway, f.probeKey, "probe", "publish", map[string]any{"topic": "jobs.fail", "value": `{"job":1}`})
		if !o.OK {
			t.Fatalf("publish: %s", o.Error)
		}
		var id uint64
		eventually(t, 15*time.Second, "the dead letter", func() bool {
			list, err := in.admin.DLQ(ctx, "probe")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range list {
				if d.RequestID == reqID {
					id = d.ID
				}
			}
			return id != 0
		})
		before := runs(t, in, "probe", "failing", reqID)
		b.Navigate(t, f.origin+"/console/dlq")
		if row := b.Text(t, "#dead-letters"); !strings.Contains(row, "this event always fails") {
			t.Errorf("dead letters: %q", row)
		}
		checkConsolePage(t, b, f, "dead letters")
		b.Screenshot(t, "console-dlq")
		b.Run(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[action="/console/dlq/%d/replay"] button`, id))), chromedp.WaitVisible(chromedp.CSS(".flash")))
		eventually(t, 15*time.Second, "the replayed event to run again", func() bool {
			return runs(t, in, "probe", "failing", reqID) > before
		})
		// The failures show on the overview's activity.
		b.Navigate(t, f.origin+"/console/")
		if act := b.Text(t, "#activity"); strings.Contains(act, " 0 errors") {
			t.Errorf("overview activity after failed invocations: %q", act)
		}
	})

	t.Run("create and revoke a key", func(t *testing.T) {
		b.Navigate(t, f.origin+"/console/keys")
		b.Run(t, chromedp.SetValue(chromedp.CSS("#key-name"), "console-made"), chromedp.SetValue(chromedp.CSS("#key-scopes"), "travel-diary"),
			chromedp.Submit(chromedp.CSS("#create-key")), chromedp.WaitVisible(chromedp.CSS("#new-key-value")))
		key := strings.TrimSpace(b.Text(t, "#new-key-value"))
		if !strings.HasPrefix(key, "aegis_") {
			t.Fatalf("new key shown as %q", key)
		}
		if st, body, _ := call(t, in.gateway, "GET", "/entries/none", key, nil); st == 401 || st == 403 {
			t.Fatalf("the key the console created is refused: %d %s", st, body)
		}
		checkConsolePage(t, b, f, "keys")
		b.Screenshot(t, "console-keys")
		b.Navigate(t, f.origin+"/console/keys")
		if strings.Contains(eval[string](t, b, `document.body.innerHTML`), key) {
			t.Error("the key's secret is shown again")
		}
		eval[bool](t, b, `window.confirm = () => true, true`)
		b.Run(t, chromedp.Click(chromedp.CSS(`tr[data-key="console-made"] form.revoke button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if st, _, _ := call(t, in.gateway, "GET", "/entries/none", key, nil); st != 401 {
			t.Errorf("revoked key: %d", st)
		}
	})

	t.Run("lift a block with step-up", func(t *testing.T) {
		for range 7 {
			call(t, in.gateway, "GET", "/entries/x", "aegis_wrong", nil)
		}
		eventually(t, 10*time.Second, "127.0.0.1 blocked", func() bool {
			st, _, _ := call(t, in.gateway, "GET", "/entries/x", f.diaryKey, nil)
			return st == http.StatusForbidden
		})
		b.Navigate(t, f.origin+"/console/guard")
		b.Run(t, chromedp.WaitVisible(chromedp.CSS("#blocks form.lift")))
		checkConsolePage(t, b, f, "guard")
		b.Screenshot(t, "console-guard")
		b.Run(t, chromedp.SetValue(chromedp.CSS("#blocks form.lift input[name=code]"), "000000"), chromedp.Submit(chromedp.CSS("#blocks form.lift")),
			chromedp.WaitVisible(chromedp.CSS("#problem")))
		if msg := b.Text(t, "#problem"); !strings.Contains(msg, "403") || !strings.Contains(msg, "step-up") {
			t.Errorf("lift with a wrong code: %q", msg)
		}
		if st, _, _ := call(t, in.gateway, "GET", "/entries/x", f.diaryKey, nil); st != http.StatusForbidden {
			t.Fatalf("the block went without a good code: %d", st)
		}
		b.Navigate(t, f.origin+"/console/guard")
		b.Run(t, chromedp.SetValue(chromedp.CSS("#blocks form.lift input[name=code]"), codeAt(t, f.otpSecret, time.Now())),
			chromedp.Submit(chromedp.CSS("#blocks form.lift")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		eventually(t, 10*time.Second, "the block lifted", func() bool {
			st, _, _ := call(t, in.gateway, "GET", "/entries/x", f.diaryKey, nil)
			return st != http.StatusForbidden
		})
		blocks, err := in.admin.GuardBlocks(ctx)
		if err != nil || len(blocks) != 0 {
			t.Errorf("blocks after the lift: %v %v", blocks, err)
		}
	})

	t.Run("forged cross-site post refused", func(t *testing.T) {
		csrf := eval[string](t, b, `document.querySelector("input[name=csrf]").value`)
		// Another site (localhost is not 127.0.0.1's site) posting to the
		// console in the signed-in browser, even knowing the CSRF token.
		evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/go.js" {
				w.Header().Set("Content-Type", "text/javascript")
				io.WriteString(w, `document.forms[0].submit();`)
				return
			}
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/console/keys"><input name="csrf" value="%s"><input name="name" value="forged"></form><script src="/go.js"></script>`, f.origin, csrf)
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go evil.Serve(ln)
		defer evil.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		b.Navigate(t, "http://localhost:"+port+"/")
		eventually(t, 10*time.Second, "the forged form to be answered", func() bool {
			return strings.HasPrefix(eval[string](t, b, `location.href`), f.origin)
		})
		keys, err := in.admin.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.Name == "forged" {
				t.Fatal("a cross-site post created a key")
			}
		}
		// Nor did it sign the browser out.
		b.Navigate(t, f.origin+"/console/")
		if who := b.Text(t, "#who"); !strings.Contains(who, "root") {
			t.Errorf("after a cross-site post the console shows %q", who)
		}
		// With the session cookie and its CSRF token, a post that says it
		// comes from another site is still refused.
		jar := signInClient(t, f.origin, in.srv.AdminToken())
		tok := csrfOf(t, jar, f.origin)
		for name, hdr := range map[string][2]string{"cross-site": {"Sec-Fetch-Site", "cross-site"}, "other origin": {"Origin", "http://localhost:" + port}} {
			req, _ := http.NewRequest("POST", f.origin+"/console/keys", strings.NewReader(url.Values{"csrf": {tok}, "name": {"forged2"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(hdr[0], hdr[1])
			resp, err := jar.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s post: %d", name, resp.StatusCode)
			}
		}
		req, _ := http.NewRequest("POST", f.origin+"/console/keys", strings.NewReader("name=forged3"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := jar.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("post without the CSRF token: %v %v", resp.StatusCode, err)
		}
	})

	t.Run("a viewer cannot act", func(t *testing.T) {
		nt, err := in.admin.CreateAdminToken(ctx, "console-viewer", "viewer", nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Navigate(t, f.origin+"/console/")
		b.Run(t, chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
		f.signIn(t, b, nt.Token)
		if who := b.Text(t, "#who"); !strings.Contains(who, "console-viewer") || !strings.Contains(who, "viewer") {
			t.Errorf("signed in as %q", who)
		}
		b.ResetRecords()
		b.Navigate(t, f.origin+"/console/keys")
		if n := eval[int](t, b, `document.querySelectorAll("#create-key, form.revoke, #create-token").length`); n != 0 {
			t.Errorf("a viewer is offered %d key actions", n)
		}
		checkConsolePage(t, b, f, "keys as viewer")
		b.Screenshot(t, "console-keys-viewer")
		if n := eval[int](t, b, `document.querySelectorAll("nav a[href='/console/audit']").length`); n != 0 {
			t.Error("a viewer is offered the audit log")
		}
		// The page's own CSRF token, the session's cookie: the API's
		// role check still refuses.
		st := eval[int](t, b, `fetch("/console/keys", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, name: "viewer-made"})}).then(r => r.status)`)
		if st != http.StatusForbidden {
			t.Errorf("a viewer's key creation: %d", st)
		}
		keys, _ := in.admin.Keys(ctx)
		for _, k := range keys {
			if k.Name == "viewer-made" {
				t.Error("a viewer created a key")
			}
		}
	})

	t.Run("sessions hold on every server and end everywhere", func(t *testing.T) {
		// A named token: servers sharing a NATS share those (a cluster's
		// members share the bootstrap token too, through the join file).
		op, err := in.admin.CreateAdminToken(ctx, "console-operator", "operator", nil)
		if err != nil {
			t.Fatal(err)
		}
		jar := signInClient(t, f.origin, op.Token)
		cookie := sessionCookie(t, jar, f.origin)
		get := func(base string) int {
			req, _ := http.NewRequest("GET", base+"/console/", nil)
			req.AddCookie(cookie)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if st := get(f.second.srv.AdminURL()); st != http.StatusOK {
			t.Fatalf("the second server refuses a session of the first: %d", st)
		}
		req, _ := http.NewRequest("POST", f.second.srv.AdminURL()+"/console/logout", strings.NewReader(url.Values{"csrf": {csrfOf(t, jar, f.origin)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out on the second server: %v", err)
		}
		if st := get(f.origin); st != http.StatusSeeOther {
			t.Errorf("after sign-out on the second server the first still accepts the session: %d", st)
		}
	})

	t.Run("failed sign-ins are slowed and reach the guard", func(t *testing.T) {
		post := func(token string) *http.Response {
			resp, err := noRedirect.PostForm(f.second.srv.AdminURL()+"/console/login", url.Values{"token": {token}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		if r := post("guess-1"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", r.StatusCode)
		}
		r := post("guess-2")
		if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Errorf("an immediate second guess: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
		}
		if l := f.second.logs.Lines(`"console sign-in failed"`, `"security":true`); len(l) == 0 {
			t.Error("no security line for a failed sign-in")
		}
		if l := f.second.logs.Lines("guess-1"); len(l) > 0 {
			t.Errorf("a presented token reached the log: %v", l[0])
		}

		// On the first server the guard's brute_force rule counts more
		// than 5: the sixth failed sign-in, each after its wait, blocks
		// the address on every server, and then even the right token is
		// refused.
		for i := range 6 {
			eventually(t, 10*time.Second, "the throttle's wait to pass", func() bool {
				resp, err := noRedirect.PostForm(f.origin+"/console/login", url.Values{"token": {fmt.Sprintf("guess-%d", i)}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusUnauthorized
			})
		}
		var blockID string
		eventually(t, 10*time.Second, "the guard's block of the guessing address", func() bool {
			blocks, err := in.admin.GuardBlocks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range blocks {
				if b.Rule == "brute_force" && b.Target == "127.0.0.1" {
					blockID = b.ID
				}
			}
			return blockID != ""
		})
		eventually(t, 10*time.Second, "the other server to refuse the blocked address's sign-in", func() bool {
			resp, err := noRedirect.PostForm(f.second.srv.AdminURL()+"/console/login", url.Values{"token": {in.srv.AdminToken()}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusForbidden
		})
		lift := as(in, in.srv.AdminToken(), client.WithOTP(codeAt(t, f.otpSecret, time.Now().Add(30*time.Second))))
		if _, err := lift.LiftGuardBlock(ctx, blockID); err != nil {
			t.Fatal(err)
		}
	})
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}

// signInClient signs in with token through the form, as a browser would,
// and returns a client holding the session.
func signInClient(t *testing.T, origin, token string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.PostForm(origin+"/console/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return c
}

func sessionCookie(t *testing.T, c *http.Client, origin string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(origin)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "aegis_console" {
			return ck
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// csrfOf reads the CSRF token of the session's forms.
func csrfOf(t *testing.T, c *http.Client, origin string) string {
	t.Helper()
	resp, err := c.Get(origin + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	const marker = `name="csrf" value="`
	i := strings.Index(string(body), marker)
	if i < 0 {
		t.Fatalf("no CSRF token on the overview: %s", body)
	}
	rest := string(body[i+len(marker):])
	return rest[:strings.IndexByte(rest, '"')]
}
