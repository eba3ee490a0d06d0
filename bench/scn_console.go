package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"time"
)

// Scenario 19: does the console render in under 100 ms with 1,000
// functions deployed? One server holds 1,000 functions in one app (the
// scale scenario's manifest), the worst case for the app page, which
// lists them all and draws their call graph; a signed-in client fetches each
// page, alternating with the baseline, the admin API's own JSON listing
// of the same 1,000 functions (GET /v1/functions). The figure is the
// whole round trip on loopback, which bounds the server's render time.
func init() {
	register(Scenario{ID: 19, Name: "console: pages with 1,000 functions deployed vs the admin API's function listing", Run: runConsole})
}

// consolePages are the pages measured: the overview lists every app; the
// app page draws the call graph of its functions and lists them.
var consolePages = []struct{ name, path string }{
	{"overview", "/console/"},
	{"app page (every function, call graph)", "/console/apps/scale0"},
	{"usage", "/console/usage"},
	{"keys", "/console/keys"},
	{"traces", "/console/traces"},
}

func runConsole(ctx context.Context, env *Env) ([]*Result, error) {
	want, rounds := 1000, 30
	if env.Quick {
		want, rounds = 20, 3
	}
	wasm, _, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	s, err := startScale(ctx, env)
	if err != nil {
		return nil, err
	}
	defer s.in.Close()
	if err := s.deployBatch(ctx, wasm, 0, want); err != nil {
		return nil, err
	}
	admin := s.in.Srv.AdminURL()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := browser.PostForm(admin+"/console/login", url.Values{"token": {s.in.Srv.AdminToken()}})
	if err != nil {
		return nil, fmt.Errorf("console sign-in: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("console sign-in: %s", resp.Status)
	}
	api := func() error {
		req, _ := http.NewRequestWithContext(ctx, "GET", admin+"/v1/functions", nil)
		req.Header.Set("Authorization", "Bearer "+s.in.Srv.AdminToken())
		return fetch(browser, req)
	}
	var out []*Result
	for _, p := range consolePages {
		page := func() error {
			req, _ := http.NewRequestWithContext(ctx, "GET", admin+p.path, nil)
			return fetch(browser, req)
		}
		pairs := make([]Pair, 0, rounds)
		for range rounds {
			b, err := timeOnce(api)
			if err != nil {
				return nil, fmt.Errorf("GET /v1/functions: %w", err)
			}
			sub, err := timeOnce(page)
			if err != nil {
				return nil, fmt.Errorf("GET %s: %w", p.path, err)
			}
			pairs = append(pairs, Pair{Baseline: b, Subject: sub})
		}
		r := pairsResult("console "+p.name+fmt.Sprintf(", %d functions deployed", want), "ms", "GET /v1/functions (JSON)", pairs)
		r.RatioNote = "page / API listing"
		r.Target = "≤ 100 ms"
		r.Met = quickMet(env, r.Subject <= 100)
		r.Notes = "median of the whole request on loopback, signed in (session read from JetStream on every page), " +
			"each page made of the admin calls it shows, in process"
		out = append(out, r)
	}
	return out, nil
}

// fetch sends req and reads the whole answer, which must be 200.
func fetch(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// timeOnce is how long f took, in milliseconds.
func timeOnce(f func() error) (float64, error) {
	start := time.Now()
	err := f()
	return float64(time.Since(start).Microseconds()) / 1000, err
}
