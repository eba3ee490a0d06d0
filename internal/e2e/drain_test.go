package e2e

import (
	"context"
	"testing"
	"time"
)

// TestShutdownDrainsInFlightWork closes a server while a request runs: the
// request finishes with its answer, and new connections are refused.
func TestShutdownDrainsInFlightWork(t *testing.T) {
	in := startServer(t, t.TempDir())
	deployProbe(t, in, writeManifest(t, versionedApp))
	k, err := in.admin.CreateKey(context.Background(), "drain")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		st, _, _ := call(t, in.gateway, "POST", "/versioned/sleep", k.Key, `{"size": 700}`)
		done <- st
	}()
	time.Sleep(200 * time.Millisecond) // the request is in the function now
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- in.srv.Close(context.Background()) }()
	select {
	case st := <-done:
		if time.Since(start) < 400*time.Millisecond {
			t.Errorf("the request ended before it could have slept")
		}
		if st != 200 {
			t.Errorf("in-flight request got %d during shutdown", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request never finished")
	}
	if err := <-closed; err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := in.admin.Apps(context.Background()); err == nil {
		t.Errorf("admin API still answers after shutdown")
	}
}
