package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/server"
)

// followWithin is how long a change made through one server may take to
// serve on another: the follower reads the app records every 500 ms, and
// building the version is a compile-cache hit here.
const followWithin = 2 * time.Second

// TestFollowDeployRollbackDelete: two servers on one NATS; a deploy, a
// rollback and a delete made through the first are served by the second
// within a second or two, without restarting it, and the first never
// rebuilds what it activated itself.
func TestFollowDeployRollbackDelete(t *testing.T) {
	first := startServer(t, t.TempDir())
	defer first.close(t)
	second := startServerWith(t, t.TempDir(), func(c *server.Config) { shareNATS(c, first) })
	defer second.close(t)
	ctx := context.Background()
	k, err := first.admin.CreateKey(ctx, "follow")
	if err != nil {
		t.Fatal(err)
	}
	key := k.Key
	status := func(in *instance, path string) int {
		s, _, _ := call(t, in.gateway, "POST", path, key, "hello")
		return s
	}
	// follows waits until the second server answers every path as wanted,
	// and says how long that took.
	follows := func(what string, want map[string]int) {
		t.Helper()
		start := time.Now()
		eventually(t, followWithin, what+" on the second server", func() bool {
			for path, code := range want {
				if status(second, path) != code {
					return false
				}
			}
			return true
		})
		t.Logf("%s served by the second server after %s", what, time.Since(start).Round(time.Millisecond))
	}

	if s := status(second, "/follow/echo"); s != 404 {
		t.Fatalf("before any deploy the second server answers %d", s)
	}
	deployProbe(t, first, "testdata/follow.yaml")
	follows("v1", map[string]int{"/follow/echo": 200})

	// v2 moves the route: the second server serves the new path and no
	// longer the old one.
	v2 := filepath.Join(t.TempDir(), "follow.yaml")
	text, err := os.ReadFile("testdata/follow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v2, []byte(strings.Replace(string(text), "/follow/{op}", "/follow-v2/{op}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	deployProbe(t, first, v2)
	follows("v2", map[string]int{"/follow-v2/echo": 200, "/follow/echo": 404})

	if _, err := first.admin.Rollback(ctx, "follow"); err != nil {
		t.Fatal(err)
	}
	follows("the rollback to v1", map[string]int{"/follow/echo": 200, "/follow-v2/echo": 404})
	apps, err := second.admin.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || apps[0].App != "follow" || apps[0].Version != "v1" {
		t.Errorf("the second server's apps after the rollback: %+v, want follow at v1", apps)
	}

	if err := first.admin.DeleteApp(ctx, "follow"); err != nil {
		t.Fatal(err)
	}
	follows("the delete", map[string]int{"/follow/echo": 404, "/follow-v2/echo": 404})

	// Each change was built once on each server: by the first as it made
	// it, by the second as it followed it.
	if n := len(first.logs.Messages("app followed")); n != 0 {
		t.Errorf("the first server followed %d changes it made itself", n)
	}
	if n := len(second.logs.Messages("app followed")); n != 3 {
		t.Errorf("the second server followed %d changes, want 3 (deploy, deploy, rollback)", n)
	}
	if n := len(second.logs.Messages("app removed")); n != 1 {
		t.Errorf("the second server logged %d removals, want 1", n)
	}
}

// TestScheduleOncePerTick: a schedule firing every second on two servers
// sharing one NATS runs once per tick, not once per server.
func TestScheduleOncePerTick(t *testing.T) {
	first := startServer(t, t.TempDir())
	defer first.close(t)
	second := startServerWith(t, t.TempDir(), func(c *server.Config) { shareNATS(c, first) })
	defer second.close(t)
	ctx := context.Background()
	k, err := first.admin.CreateKey(ctx, "ticks")
	if err != nil {
		t.Fatal(err)
	}
	deployProbe(t, first, "testdata/ticks.yaml")
	// runs counts the runs recorded so far: each writes tick-<request id>.
	runs := func() int {
		o, _ := probe(t, first.gateway, k.Key, "ticks", "kv-list", map[string]any{"table": "events", "key": "tick-"})
		if !o.OK {
			t.Fatalf("list the runs: %+v", o)
		}
		if o.Value == "" {
			return 0
		}
		return len(strings.Split(o.Value, "\n"))
	}
	// Both servers schedule it once the second has followed the deploy.
	eventually(t, followWithin, "the second server to follow the deploy", func() bool {
		apps, err := second.admin.Apps(ctx)
		return err == nil && len(apps) == 1
	})
	eventually(t, 5*time.Second, "the schedule to fire", func() bool { return runs() > 0 })
	before, start := runs(), time.Now()
	time.Sleep(5 * time.Second)
	n, took := runs()-before, time.Since(start)
	ticks := int(took / time.Second)
	t.Logf("%d runs in %s on two servers", n, took.Round(time.Millisecond))
	// ticks or ticks+1 whole seconds fall in the window; once per server
	// would be twice that.
	if n < ticks-1 || n > ticks+1 {
		t.Errorf("%d runs in %s, want one per tick (%d±1)", n, took.Round(time.Millisecond), ticks)
	}
}
