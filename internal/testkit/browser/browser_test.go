package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser loads a page whose policy allows its own origin only and
// which asks for an image from another loopback origin, and checks what
// the Browser recorded, a form submit, headers and a screenshot.
func TestBrowser(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other origin was reached: %s %s", r.Method, r.URL)
	}))
	defer other.Close()
	// Another origin: localhost (the one host name the browser resolves)
	// and another port.
	otherImg := fmt.Sprintf("http://localhost:%d/x.png", other.Listener.Addr().(*net.TCPAddr).Port)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>t</title>
<h1 id="h">hello</h1>
<img src=%q alt="">
<form method="post" action="/submit"><input name="who" id="who"><button id="go">go</button></form>
<script src="/app.js"></script>`, otherImg)
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `console.log("app", "loaded"); document.getElementById("h").textContent = "scripted";`)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><p id="got">got %s</p>`, strings.ReplaceAll(r.FormValue("who"), "<", "&lt;"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on 127.0.0.1: %s", srv.URL)
	}

	b := Start(t)
	b.Navigate(t, srv.URL+"/")
	if got := b.Text(t, "#h"); got != "scripted" {
		t.Errorf("heading = %q, want the script's %q", got, "scripted")
	}

	reqs := b.Requests()
	t.Logf("requests: %q", reqs)
	t.Logf("console: %q", b.Console())
	t.Logf("violations: %q", b.Violations())
	for _, want := range []string{srv.URL + "/", srv.URL + "/app.js"} {
		if !slices.Contains(reqs, want) {
			t.Errorf("requests %q lack %s", reqs, want)
		}
	}
	if cross := b.CrossOrigin(srv.URL); !slices.Equal(cross, []string{otherImg}) {
		t.Errorf("CrossOrigin = %q, want just %s", cross, otherImg)
	}
	if cross := b.CrossOrigin(srv.URL + "/"); !slices.Equal(cross, []string{otherImg}) {
		t.Errorf("CrossOrigin with a trailing slash = %q, want just %s", cross, otherImg)
	}
	var fake fakeTB
	b.CheckSameOrigin(&fake, srv.URL)
	if len(fake.errors) != 1 || !strings.Contains(fake.errors[0], otherImg) {
		t.Errorf("CheckSameOrigin reported %q, want one error naming %s", fake.errors, otherImg)
	}
	if v := b.Violations(); len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), "Content Security Policy") {
		t.Errorf("no Content Security Policy violation recorded: %q", v)
	}
	if c := b.Console(); !slices.Contains(c, "console.log: app loaded") {
		t.Errorf("console %q lacks the script's console.log", c)
	}
	h := b.DocumentHeaders(srv.URL + "/")
	if got := h.Get("Content-Security-Policy"); got != "default-src 'self'" {
		t.Errorf("document's Content-Security-Policy = %q (headers %v)", got, h)
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("document's X-Frame-Options = %q", got)
	}

	path := b.Screenshot(t, "testkit browser/self-test")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is no PNG: %v", path, err)
	}
	if r := img.Bounds(); r.Dx() != 1280 || r.Dy() < 100 {
		t.Errorf("screenshot is %v, want 1280 wide", r)
	}

	b.ResetRecords()
	if len(b.Requests()) != 0 || len(b.Violations()) != 0 || len(b.Console()) != 0 || b.LastDocumentHeaders() != nil {
		t.Error("ResetRecords left records")
	}
	b.Run(t,
		chromedp.SetValue(chromedp.CSS("#who"), "<ada>"),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#got")),
	)
	if got := b.Text(t, "#got"); got != "got <ada>" {
		t.Errorf("after submit: %q", got)
	}
	if got := b.LastDocumentHeaders().Get("Content-Security-Policy"); got != "default-src 'none'" {
		t.Errorf("the answer's Content-Security-Policy = %q", got)
	}
	b.CheckSameOrigin(t, srv.URL)
	if v := b.Violations(); len(v) != 0 {
		t.Errorf("violations after submit: %q", v)
	}
}

func TestOriginOf(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080/a?b": "http://127.0.0.1:8080",
		"http://[::1]:80/":          "http://[::1]",
		"https://localhost:443/x":   "https://localhost",
		"http://localhost:9/":       "http://localhost:9",
		"data:image/png;base64,AA":  "",
		"blob:http://127.0.0.1/x":   "",
		"about:blank":               "",
	} {
		got, ok := originOf(raw)
		if got != want || ok != (want != "") {
			t.Errorf("originOf(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

// fakeTB records what CheckSameOrigin reports, in place of a real test.
type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
