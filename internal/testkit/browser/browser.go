// Package browser drives a real headless Chromium for the tests of the web
// console: Debian's chromium package, through chromedp. A Browser records
// what the page does besides what a test asks of it — every network request,
// every console message, every Content-Security-Policy violation, the
// response headers of each document — so a test can check that a page loads
// nothing from another origin and breaks none of its own policy.
//
// Start skips the test when no Chromium is installed, or fails it when
// AEGIS_REQUIRE_BROWSER=1 (as ./scripts/test.sh sets, after installing it).
// The browser talks to loopback only: it is told not to reach any Google
// service, and to resolve no host but localhost, 127.0.0.1 and ::1.
package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// module is the path of the module whose root holds build/screenshots.
const module = "github.com/aegis-platform/aegis"

// actionTimeout bounds each action a test runs, so a selector that never
// matches fails the test instead of hanging it until the package timeout.
const actionTimeout = 30 * time.Second

// Browser is one headless Chromium with one tab, started for one test.
type Browser struct {
	ctx context.Context

	mu         sync.Mutex
	requests   []string
	console    []string
	violations []string
	docHeaders map[string]http.Header
	lastDoc    string
}

// Path returns the Chromium binary the tests use: $AEGIS_CHROMIUM, else
// /usr/bin/chromium (Debian's), else chromium or chromium-browser on PATH;
// "" when there is none.
func Path() string {
	if p := os.Getenv("AEGIS_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start launches a headless Chromium for the test and opens its tab; the
// browser exits when the test ends. Without a Chromium the test is skipped,
// or fails when AEGIS_REQUIRE_BROWSER=1.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		msg := "no Chromium found ($AEGIS_CHROMIUM, /usr/bin/chromium, chromium or chromium-browser on PATH)"
		if os.Getenv("AEGIS_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + "; the console tests need Debian's chromium: run ./scripts/test.sh, which installs it")
		}
		t.Skip(msg + "; the console tests need Debian's chromium (./scripts/test.sh installs it)")
	}
	// The profile directory: TempDir's removal is registered before the
	// cleanup below, so it runs after Chromium has exited.
	profile := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		// Chromium refuses to start its sandbox as root, and as any user
		// in containers without unprivileged user namespaces, which is
		// where CI runs. The pages are the project's own, served on
		// loopback by the test itself: the renderer sandbox would guard
		// against nothing here, so it is off always, not only as root,
		// and the tests behave the same for every user.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		// Without these, a fresh profile reaches out to Google hosts
		// (component and safe-browsing updates, sync, field trials,
		// translate, optimization hints), from a test that must use
		// loopback only.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		// And should anything still try, no host resolves but the
		// loopback ones, so nothing leaves this machine: localhost,
		// 127.0.0.1 and ::1 are the only addresses a page can reach
		// (the rules apply to IP literals too).
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE ::1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{docHeaders: map[string]http.Header{}}
	ctx, cancel := chromedp.NewContext(actx,
		chromedp.WithListener(b.record),
		chromedp.WithErrorf(func(format string, args ...any) { t.Logf("chromedp: "+format, args...) }),
	)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b.ctx = ctx
	// The first run starts Chromium and attaches to its tab, which enables
	// the Network, Log and Runtime domains the recording listens to.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

// record is the tab's event listener; it runs on the goroutine that reads
// the browser's messages, so it only appends under the lock.
func (b *Browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request != nil {
			b.requests = append(b.requests, ev.Request.URL)
		}
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument && ev.Response != nil {
			h := http.Header{}
			for k, v := range ev.Response.Headers {
				// DevTools joins a repeated header's values with newlines.
				for _, s := range strings.Split(fmt.Sprint(v), "\n") {
					h.Add(k, s)
				}
			}
			b.docHeaders[ev.Response.URL] = h
			b.lastDoc = ev.Response.URL
		}
	case *log.EventEntryAdded:
		if e := ev.Entry; e != nil {
			line := fmt.Sprintf("%s %s: %s", e.Source, e.Level, e.Text)
			b.console = append(b.console, line)
			if e.Source == log.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") {
				b.violations = append(b.violations, line)
			}
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			switch {
			case a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0:
				var s string
				if err := json.Unmarshal(a.Value, &s); err != nil {
					s = string(a.Value)
				}
				parts = append(parts, s)
			case len(a.Value) > 0:
				parts = append(parts, string(a.Value))
			case a.Description != "":
				parts = append(parts, a.Description)
			default:
				parts = append(parts, string(a.Type))
			}
		}
		line := fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
		b.console = append(b.console, line)
		if strings.Contains(line, "Content Security Policy") {
			b.violations = append(b.violations, line)
		}
	case *runtime.EventExceptionThrown:
		if d := ev.ExceptionDetails; d != nil {
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.console = append(b.console, "exception: "+text)
		}
	}
}

// Ctx returns the context of the browser's tab, for chromedp actions a
// helper does not cover; give it a timeout of its own per action.
func (b *Browser) Ctx() context.Context { return b.ctx }

// Run runs the actions in the tab, in order, and fails the test with the
// first error.
func (b *Browser) Run(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// Navigate loads url in the tab and waits for its load event.
func (b *Browser) Navigate(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
}

// Text returns the visible text of the first element the CSS selector
// matches, waiting for one to appear.
func (b *Browser) Text(t testing.TB, selector string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("text of %s: %v", selector, err)
	}
	return s
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot writes a PNG of the whole page (beyond the window too) to
// Dir()/name.png and returns its path.
func (b *Browser) Screenshot(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	name = unsafeName.ReplaceAllString(strings.TrimSuffix(name, ".png"), "_")
	path := filepath.Join(Dir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// Dir returns the directory screenshots go to, created if need be:
// $AEGIS_SCREENSHOTS, else build/screenshots at the root of the module
// (build/ is ignored by git).
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AEGIS_SCREENSHOTS")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "build", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// repoRoot walks up from the working directory (a test's is its package's)
// to the directory whose go.mod declares this module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == module {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory; set AEGIS_SCREENSHOTS", module)
		}
		dir = parent
	}
}

// modulePath returns the module path a go.mod declares, or "".
func modulePath(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// Requests returns the URLs of every request the tab made since the start
// or the last ResetRecords, in order: documents, scripts, images, fetches,
// and the ones a Content-Security-Policy then blocked.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// Console returns the console messages of the tab since the start or the
// last ResetRecords: console API calls ("console.log: ..."), browser log
// entries ("security error: ...") and uncaught exceptions ("exception: ...").
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Violations returns the console entries that report a
// Content-Security-Policy violation or another security error, since the
// start or the last ResetRecords.
func (b *Browser) Violations() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.violations...)
}

// CrossOrigin returns the recorded requests whose origin
// (scheme://host:port) is not origin: any other host or port, and data:,
// blob: or javascript: URLs; about:blank is never reported.
func (b *Browser) CrossOrigin(origin string) []string {
	want := strings.TrimSuffix(origin, "/")
	var out []string
	for _, u := range b.Requests() {
		if u == "about:blank" {
			continue
		}
		if o, ok := originOf(u); !ok || o != want {
			out = append(out, u)
		}
	}
	return out
}

// originOf returns the scheme://host:port of an http(s) URL, with the
// scheme's default port left implicit as browsers write origins.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	host := u.Host
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host, true
}

// CheckSameOrigin fails the test for every recorded request that is not to
// origin (as CrossOrigin lists them).
func (b *Browser) CheckSameOrigin(t testing.TB, origin string) {
	t.Helper()
	for _, u := range b.CrossOrigin(origin) {
		t.Errorf("request to another origin than %s: %s", origin, u)
	}
}

// DocumentHeaders returns the response headers of the document loaded from
// url (as the browser reports its URL, after redirects), or nil.
func (b *Browser) DocumentHeaders(url string) http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.docHeaders[url].Clone()
}

// LastDocumentHeaders returns the response headers of the last document the
// tab received (a navigation, a form's answer, or a frame's), or nil.
func (b *Browser) LastDocumentHeaders() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.docHeaders[b.lastDoc].Clone()
}

// ResetRecords forgets the requests, console messages, violations and
// document headers recorded so far.
func (b *Browser) ResetRecords() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests, b.console, b.violations = nil, nil, nil
	b.docHeaders, b.lastDoc = map[string]http.Header{}, ""
}
