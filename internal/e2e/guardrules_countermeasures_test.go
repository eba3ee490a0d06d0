package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/server"
)

// countermeasureRules are rules a test reaches in a few calls: a key
// suspended after 3 failures, a function quarantined after 3 denials, a
// new edge alerted after a learning window of 5 s, a spend spike above
// 20 invocations in a quarter of a second once the baseline is learnt.
// The address rules stay out of reach: every call comes from 127.0.0.1.
func countermeasureRules() []guard.Rule {
	const h = time.Hour
	return []guard.Rule{
		{Name: guard.RuleKeyAbuse, Signals: []guard.Signal{guard.AuthFailure, guard.RateLimited}, GroupBy: guard.ByKey,
			Threshold: 3, Window: time.Minute, Then: []guard.Action{{Kind: guard.ActSuspendKey, Duration: h}}},
		{Name: guard.RuleCompromisedFunction, Signals: []guard.Signal{guard.PermissionDenied}, GroupBy: guard.ByFunction,
			Threshold: 3, Window: time.Minute, Then: []guard.Action{{Kind: guard.ActAlert, Duration: h}, {Kind: guard.ActQuarantine, Duration: h}}},
		{Name: guard.RuleNewCallPath, Signals: []guard.Signal{guard.NewEdge}, GroupBy: guard.ByEdge, Window: time.Minute,
			Learning: 5 * time.Second, Then: []guard.Action{{Kind: guard.ActAlert, Duration: h}}},
		{Name: guard.RuleSpendSpike, Signals: []guard.Signal{guard.Invocation}, GroupBy: guard.ByFunction, Threshold: 20,
			Window: 250 * time.Millisecond, Baseline: 3,
			Then: []guard.Action{{Kind: guard.ActAlert, Duration: h}, {Kind: guard.ActThrottle, Duration: h}}},
	}
}

// TestGuardCountermeasures runs the guard's function, key and call-path
// rules against a real server: a key that keeps failing is suspended; a
// function that keeps hitting denials is quarantined, its events wait and
// are handled once the quarantine is lifted; an edge first seen after the
// learning window raises an alert, one seen within it does not; a spend
// spike is throttled.
func TestGuardCountermeasures(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Guard.Rules = countermeasureRules() })
	t.Cleanup(func() { in.close(t) })
	ctx := context.Background()
	deployProbe(t, in, "testdata/guarded.yaml")
	// The app counts as deployed once it can run, before the deploy
	// answers: its learning window ends within 5 s of now.
	deployed := time.Now()
	boss, err := in.admin.CreateKey(ctx, "boss")
	if err != nil {
		t.Fatal(err)
	}
	key := boss.Key

	// Within the learning window: boss writes its table for the first
	// time. The edge is recorded, not alerted.
	if o, _ := probe(t, in.gateway, key, "boss", "kv-put", map[string]string{"table": "fresh", "key": "k", "value": "v"}); !o.OK {
		t.Fatalf("kv-put to a granted table: %+v", o)
	}

	t.Run("key abuse suspends the key", func(t *testing.T) {
		victim, err := in.admin.CreateKey(ctx, "victim")
		if err != nil {
			t.Fatal(err)
		}
		if st, _, _ := call(t, in.gateway, "POST", "/boss/echo", victim.Key, []byte("x")); st != 200 {
			t.Fatalf("a valid key: %d", st)
		}
		// Another secret of the right shape: one character in its middle
		// changed (the last carries padding bits).
		i := len(victim.Key) - 10
		wrong := victim.Key[:i] + map[bool]string{true: "b", false: "a"}[victim.Key[i] == 'a'] + victim.Key[i+1:]
		for range 4 {
			if st, _, _ := call(t, in.gateway, "POST", "/boss/echo", wrong, []byte("x")); st != 401 {
				t.Fatalf("a wrong secret: %d", st)
			}
		}
		// Suspended: even the right secret is refused, with the plain 403
		// of any refusal; another key is not.
		eventually(t, 5*time.Second, "the key suspended", func() bool {
			st, _, _ := call(t, in.gateway, "POST", "/boss/echo", victim.Key, []byte("x"))
			return st == http.StatusForbidden
		})
		_, body, _ := call(t, in.gateway, "POST", "/boss/echo", victim.Key, []byte("x"))
		if msg, _ := errorBody(t, body); msg != "forbidden" {
			t.Errorf("suspended key's answer: %s", body)
		}
		if st, _, _ := call(t, in.gateway, "POST", "/boss/echo", key, []byte("x")); st != 200 {
			t.Fatalf("another key after the suspension: %d", st)
		}
		b := findBlock(t, in, guard.KindKey, "")
		if b.Rule != guard.RuleKeyAbuse || b.Expires.Before(time.Now().Add(50*time.Minute)) {
			t.Fatalf("key block %+v", b)
		}
		if _, err := in.admin.LiftGuardBlock(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if st, _, _ := call(t, in.gateway, "POST", "/boss/echo", victim.Key, []byte("x")); st != 200 {
			t.Fatalf("the key after the lift: %d", st)
		}
	})

	t.Run("a function hitting denials is quarantined and its events wait", func(t *testing.T) {
		// The learning window ends before boss publishes: its new edges
		// (boss → work.item → intruder) are alerted.
		time.Sleep(time.Until(deployed.Add(5500 * time.Millisecond)))
		for range 4 {
			o, _ := probe(t, in.gateway, key, "intruder", "kv-put", map[string]string{"table": "secrets", "key": "k", "value": "v"})
			if !o.Denied {
				t.Fatalf("kv-put to an ungranted table: %+v", o)
			}
		}
		eventually(t, 5*time.Second, "intruder quarantined", func() bool {
			st, _, _ := call(t, in.gateway, "POST", "/intruder/echo", key, []byte("x"))
			return st == http.StatusServiceUnavailable
		})
		b := findBlock(t, in, guard.KindQuarantine, "guarded/intruder")
		if b.Rule != guard.RuleCompromisedFunction {
			t.Fatalf("quarantine %+v", b)
		}
		// Events for it wait in their stream: none is handled, none is
		// dead-lettered.
		var ids []string
		for _, v := range []string{"one", "two", "three"} {
			o, id := probe(t, in.gateway, key, "boss", "publish", map[string]string{"topic": "work.item", "value": v})
			if !o.OK {
				t.Fatalf("publish: %+v", o)
			}
			ids = append(ids, id)
		}
		handled := func() int {
			n := 0
			for _, id := range ids {
				if o, _ := probe(t, in.gateway, key, "boss", "kv-get", map[string]string{"table": "events", "key": id}); o.OK {
					n++
				}
			}
			return n
		}
		time.Sleep(2 * time.Second)
		if n := handled(); n != 0 {
			t.Fatalf("%d events handled by a quarantined function", n)
		}
		if dl, err := in.admin.DLQ(ctx, "guarded"); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters while quarantined: %v %v", dl, err)
		}
		// Lifted: the waiting events are handled, every one.
		if code, out, errs := aegisCLI(t, in, "guard", "lift", b.ID); code != 0 {
			t.Fatalf("aegis guard lift: %d %s %s", code, out, errs)
		}
		eventually(t, 15*time.Second, "the waiting events handled", func() bool { return handled() == len(ids) })
		if dl, err := in.admin.DLQ(ctx, "guarded"); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters after the lift: %v %v", dl, err)
		}
		if st, _, _ := call(t, in.gateway, "POST", "/intruder/echo", key, []byte("x")); st != 200 {
			t.Fatalf("intruder after the lift: %d", st)
		}
		if lines := in.logs.Messages("guard quarantined function"); len(lines) != 1 || lines[0]["target"] != "guarded/intruder" {
			t.Fatalf("quarantine log lines: %v", lines)
		}
	})

	t.Run("a new edge after the learning window raises an alert", func(t *testing.T) {
		var targets []string
		eventually(t, 10*time.Second, "the new edges' alerts", func() bool {
			targets = targets[:0]
			for _, l := range in.logs.Messages("guard alert") {
				if l["rule"] == guard.RuleNewCallPath {
					targets = append(targets, l["target"].(string))
				}
			}
			return slices.Contains(targets, "guarded: publish boss → work.item") &&
				slices.Contains(targets, "guarded: kv intruder → secrets")
		})
		for _, tg := range targets {
			if strings.Contains(tg, "fresh") {
				t.Errorf("an edge first taken within the learning window alerted: %s", tg)
			}
			if strings.Contains(tg, "http ") || strings.Contains(tg, "event ") {
				t.Errorf("a trigger's edge alerted: %s", tg)
			}
		}
	})

	t.Run("a spend spike is throttled", func(t *testing.T) {
		// Seen once, then quiet for more than 15 windows: its baseline is
		// learnt (near zero), so 21 calls in a window are a spike.
		if st, _, _ := call(t, in.gateway, "POST", "/spender/echo", key, []byte("x")); st != 200 {
			t.Fatalf("spender: %d", st)
		}
		time.Sleep(16 * 250 * time.Millisecond)
		eventually(t, 10*time.Second, "the spend spike throttled", func() bool {
			for range 30 {
				call(t, in.gateway, "POST", "/spender/echo", key, []byte("x"))
			}
			return hasBlock(t, in, guard.KindThrottle, "guarded/spender")
		})
		b := findBlock(t, in, guard.KindThrottle, "guarded/spender")
		if b.Rule != guard.RuleSpendSpike {
			t.Fatalf("throttle %+v", b)
		}
		// Beyond the throttle's rate the gateway answers 429.
		limited := false
		for range 2000 {
			st, body, _ := call(t, in.gateway, "POST", "/spender/echo", key, []byte("x"))
			if st == http.StatusTooManyRequests {
				msg, _ := errorBody(t, body)
				if msg != "rate limit exceeded" {
					t.Fatalf("throttled answer: %s", body)
				}
				limited = true
				break
			}
		}
		if !limited {
			t.Fatal("2,000 calls in a row were never throttled")
		}
		// Another function is not.
		if st, _, _ := call(t, in.gateway, "POST", "/boss/echo", key, []byte("x")); st != 200 {
			t.Fatalf("boss while spender is throttled: %d", st)
		}
	})
}

// guardBlocks reads `aegis guard blocks -o json`.
func guardBlocks(t *testing.T, in *instance) []client.GuardBlock {
	t.Helper()
	code, out, errs := aegisCLI(t, in, "guard", "blocks", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis guard blocks: %d %s", code, errs)
	}
	var blocks []client.GuardBlock
	if err := json.Unmarshal([]byte(out), &blocks); err != nil {
		t.Fatalf("guard blocks -o json: %v: %s", err, out)
	}
	return blocks
}

func hasBlock(t *testing.T, in *instance, kind, target string) bool {
	for _, b := range guardBlocks(t, in) {
		if b.Kind == kind && (target == "" || b.Target == target) {
			return true
		}
	}
	return false
}

// findBlock is the block of kind on target ("" any), or fails.
func findBlock(t *testing.T, in *instance, kind, target string) client.GuardBlock {
	t.Helper()
	blocks := guardBlocks(t, in)
	for _, b := range blocks {
		if b.Kind == kind && (target == "" || b.Target == target) {
			return b
		}
	}
	t.Fatalf("no %s block on %q in %+v", kind, target, blocks)
	return client.GuardBlock{}
}
