package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
)

// upRun is an `aegis up` running in-process until stop is called.
type upRun struct {
	gateway, key string
	out, errs    *logBuffer
	stop         func(t *testing.T) // cancels, as Ctrl-C would, and checks a clean exit
}

// startUp runs `aegis up` with args and waits until it prints the gateway
// URL (scheme http or https) and the API key.
func startUp(t *testing.T, scheme string, args ...string) *upRun {
	t.Helper()
	return startUpCommand(t, "up", scheme, args...)
}

// startUpCommand is startUp for `aegis up` or `aegis dev` (command).
func startUpCommand(t *testing.T, command, scheme string, args ...string) *upRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &upRun{out: &logBuffer{}, errs: &logBuffer{}}
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(ctx, append([]string{command}, args...), strings.NewReader(""), r.out, r.errs, func(string) string { return "" })
	}()
	gatewayRe := regexp.MustCompile(`gateway\s+(` + scheme + `://127\.0\.0\.1:\d+)`)
	keyRe := regexp.MustCompile(`API key\s+(aegis_\S+)`)
	eventually(t, 3*time.Minute, "aegis up to print the gateway and key", func() bool {
		select {
		case c := <-code:
			t.Fatalf("aegis up exited with %d: %s", c, r.errs.String())
		default:
		}
		s := r.out.String()
		if m := gatewayRe.FindStringSubmatch(s); m != nil {
			r.gateway = m[1]
		}
		if m := keyRe.FindStringSubmatch(s); m != nil {
			r.key = m[1]
		}
		return r.gateway != "" && r.key != ""
	})
	r.stop = func(t *testing.T) {
		t.Helper()
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("aegis up exit code %d after stop: %s", c, r.errs.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("aegis up did not stop")
		}
	}
	return r
}

// TestUp runs the command the README gives for the main job, on the echo
// example: it must build, start a server, deploy, print a working URL and
// key, and stop cleanly when its context ends (as on Ctrl-C).
func TestUp(t *testing.T) {
	up := startUp(t, "http", "../../examples/echo", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	st, body, _ := call(t, up.gateway, "POST", "/echo", up.key, `{"message":"hi"}`)
	if st != 200 || !strings.Contains(string(body), `"hi"`) {
		t.Fatalf("echo through aegis up: %d %s", st, body)
	}
	if st, _, _ := call(t, up.gateway, "POST", "/echo", "", `{"message":"hi"}`); st != 401 {
		t.Errorf("echo without key: %d", st)
	}
	up.stop(t)
}

// TestUpTravelDiary runs the README's main job as written: `aegis up
// examples/travel-diary` on a fresh data directory must come up although
// notify's secret is not set yet, giving it a random value and saying how
// to set the real one. (No entry is saved: notify would then look up its
// webhook's host in the real DNS.)
func TestUpTravelDiary(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "master.key")
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	up := startUp(t, "http", "../../examples/travel-diary", "--data", data, "--master-key-file", keyFile,
		"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	defer up.stop(t)
	if want := "secret notify-token of travel-diary was not set: it now holds a random value (set yours with: aegis --data " + data +
		" secrets set travel-diary notify-token)"; !strings.Contains(up.errs.String(), want) {
		t.Errorf("aegis up does not say it set notify-token:\n%s", up.errs.String())
	}
	if st, body, _ := call(t, up.gateway, "GET", "/entries/0123456789abcdef0123456789abcdef", up.key, nil); st != 404 {
		t.Errorf("GET an unknown entry through aegis up: %d %s", st, body)
	}
}
