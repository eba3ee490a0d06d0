package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestContainment(t *testing.T) {
	in, key := sharedServer(t)

	// While a function spins forever and another eats memory, a neighbour
	// keeps answering.
	var wg sync.WaitGroup
	results := map[string]int{}
	var mu sync.Mutex
	run := func(name, path string) {
		defer wg.Done()
		st, body, _ := call(t, in.gateway, "POST", path, key, "{}")
		mu.Lock()
		results[name] = st
		mu.Unlock()
		errorBody(t, body)
	}
	wg.Add(2)
	start := time.Now()
	go run("loop", "/slow/loop")
	go run("membomb", "/hungry/membomb")

	neighbour := 0
	for time.Since(start) < 250*time.Millisecond {
		st, body, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("still here"))
		if st != 200 || string(body) != "still here" {
			t.Fatalf("neighbour failed during containment: %d %s", st, body)
		}
		neighbour++
	}
	wg.Wait()
	if neighbour == 0 {
		t.Fatal("neighbour never answered")
	}
	if results["loop"] != http.StatusGatewayTimeout {
		t.Errorf("infinite loop: status %d, want 504", results["loop"])
	}
	if results["membomb"] != http.StatusInternalServerError {
		t.Errorf("memory bomb: status %d, want 500", results["membomb"])
	}
	if d := time.Since(start); d > 9*time.Second {
		t.Errorf("containment took %s", d)
	}

	// The same functions serve again after their instance was discarded.
	if st, _, _ := call(t, in.gateway, "POST", "/slow/echo", key, []byte("ok")); st != 200 {
		t.Errorf("slow after timeout: %d", st)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/hungry/echo", key, []byte("ok")); st != 200 {
		t.Errorf("hungry after memory bomb: %d", st)
	}
	if len(in.logs.Lines("invocation failed", `"function":"slow"`)) == 0 {
		t.Errorf("the timeout was not logged")
	}
}

func TestSizeCaps(t *testing.T) {
	in, key := sharedServer(t)
	// Response over max_response (64 KiB).
	st, body, _ := call(t, in.gateway, "POST", "/small/huge", key, `{"size": 200000}`)
	if st != http.StatusBadGateway {
		t.Errorf("huge response: %d %s", st, body)
	}
	errorBody(t, body)
	// Under the cap is fine.
	if st, body, _ := call(t, in.gateway, "POST", "/small/huge", key, `{"size": 1000}`); st != 200 || len(body) != 1000 {
		t.Errorf("small response: %d len %d", st, len(body))
	}
	// Body over max_body (1 KiB): declared length and chunked.
	big := bytes.Repeat([]byte("a"), 4096)
	st, body, _ = call(t, in.gateway, "POST", "/small/echo", key, big)
	if st != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", st)
	}
	errorBody(t, body)
	req, _ := http.NewRequest("POST", in.gateway+"/small/echo", struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body: %d", resp.StatusCode)
	}
}

func TestPanicIsContainedAndSanitized(t *testing.T) {
	in, key := sharedServer(t)
	st, body, _ := call(t, in.gateway, "POST", "/probe/panic", key, "{}")
	if st != http.StatusInternalServerError {
		t.Fatalf("panic: %d", st)
	}
	msg, id := errorBody(t, body)
	if msg != "function failed" {
		t.Errorf("message %q", msg)
	}
	if len(in.logs.Lines("invocation failed", id)) == 0 {
		t.Errorf("the failure is not in the log under request id %s", id)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("x")); st != 200 {
		t.Errorf("after panic: %d", st)
	}
}

func TestIsolationModes(t *testing.T) {
	in, key := sharedServer(t)
	count := func(fn string) int {
		_, body, _ := call(t, in.gateway, "POST", "/"+fn+"/calls", key, "{}")
		var v struct{ Calls int }
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %s", fn, body)
		}
		return v.Calls
	}
	for i := 0; i < 3; i++ {
		if c := count("isolated"); c != 1 {
			t.Fatalf("per-request isolation shared state: calls=%d", c)
		}
	}
	a, b := count("probe"), count("probe")
	if b <= a && a != 0 {
		// One warm instance serving sequential calls keeps its state.
		t.Errorf("reuse mode did not keep a warm instance: %d then %d", a, b)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	in, key := sharedServer(t)
	// concurrency 1, timeout 300ms: three spinning requests cannot all get
	// the one instance; whoever queues past the timeout is told to retry.
	statuses := make(chan int, 3)
	for i := 0; i < 3; i++ {
		go func() {
			st, body, hdr := call(t, in.gateway, "POST", "/single/loop", key, "{}")
			if st == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			errorBody(t, body)
			statuses <- st
		}()
	}
	got := map[int]int{}
	for i := 0; i < 3; i++ {
		got[<-statuses]++
	}
	if got[http.StatusTooManyRequests] == 0 || got[http.StatusGatewayTimeout] == 0 || got[http.StatusTooManyRequests]+got[http.StatusGatewayTimeout] != 3 {
		t.Errorf("statuses %v, want some 504 (spun to the timeout) and some 429 (queued too long)", got)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/single/echo", key, []byte("x")); st != 200 {
		t.Errorf("after the burst: %d", st)
	}
}
