package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
)

// TestUp runs the command the README gives for the main job, on the echo
// example: it must build, start a server, deploy, print a working URL and
// key, and stop cleanly when its context ends (as on Ctrl-C).
func TestUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs logBuffer
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(ctx, []string{"up", "../../examples/echo", "--data", t.TempDir(),
			"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, strings.NewReader(""), &out, &errs, func(string) string { return "" })
	}()
	gatewayRe := regexp.MustCompile(`gateway\s+(http://127\.0\.0\.1:\d+)`)
	keyRe := regexp.MustCompile(`API key\s+(aegis_\S+)`)
	var gw, key string
	eventually(t, 3*time.Minute, "aegis up to print the gateway and key", func() bool {
		select {
		case c := <-code:
			t.Fatalf("aegis up exited with %d: %s", c, errs.String())
		default:
		}
		s := out.String()
		if m := gatewayRe.FindStringSubmatch(s); m != nil {
			gw = m[1]
		}
		if m := keyRe.FindStringSubmatch(s); m != nil {
			key = m[1]
		}
		return gw != "" && key != ""
	})
	st, body, _ := call(t, gw, "POST", "/echo", key, `{"message":"hi"}`)
	if st != 200 || !strings.Contains(string(body), `"hi"`) {
		t.Fatalf("echo through aegis up: %d %s", st, body)
	}
	if st, _, _ := call(t, gw, "POST", "/echo", "", `{"message":"hi"}`); st != 401 {
		t.Errorf("echo without key: %d", st)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("aegis up exit code %d after stop: %s", c, errs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("aegis up did not stop")
	}
}
