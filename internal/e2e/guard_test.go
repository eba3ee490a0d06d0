package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/server"
)

// guardRules are the default rules with thresholds a test reaches in a few
// requests; windows and durations are the defaults.
func guardRules() []guard.Rule {
	rules := guard.DefaultRules()
	for i := range rules {
		switch rules[i].Name {
		case guard.RuleBruteForce:
			rules[i].Threshold = 5
		case guard.RuleShadowAPI:
			rules[i].Threshold = 8
		}
	}
	return rules
}

// guardFixture is a server of its own (the shared one must never block
// 127.0.0.1) running guardRules, with the probe app and a valid key, and a
// second server sharing its NATS.
type guardFixture struct {
	in, second *instance
	key        string
}

func newGuardFixture(t *testing.T) *guardFixture {
	t.Helper()
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.Guard.Rules = guardRules()
		c.Audit.SecurityWindow = 200 * time.Millisecond
	})
	t.Cleanup(func() { in.close(t) })
	deployProbe(t, in, "testdata/probe.yaml")
	k, err := in.admin.CreateKey(context.Background(), "guarded")
	if err != nil {
		t.Fatal(err)
	}
	second := startServerWith(t, t.TempDir(), func(c *server.Config) {
		shareNATS(c, in)
	})
	t.Cleanup(func() { second.close(t) })
	return &guardFixture{in: in, second: second, key: k.Key}
}

// status is the gateway's answer to the probe's echo with key.
func (f *guardFixture) status(t *testing.T, gw, key string) (int, []byte) {
	t.Helper()
	st, body, _ := call(t, gw, "POST", "/probe/echo", key, []byte("x"))
	return st, body
}

// blocks reads `aegis guard blocks -o json`.
func (f *guardFixture) blocks(t *testing.T) []map[string]any {
	t.Helper()
	code, out, errs := aegisCLI(t, f.in, "guard", "blocks", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis guard blocks: %d %s", code, errs)
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(out), &blocks); err != nil {
		t.Fatalf("guard blocks -o json is not a JSON array: %v: %s", err, out)
	}
	return blocks
}

// TestGuardBlocksBruteForce: wrong API keys from one address get it
// blocked; then even a valid key gets 403, on this server and on another
// sharing its NATS, while the admin API keeps answering; `aegis guard
// lift` lets it back in on both, and the block and the lift are in the
// audit log.
func TestGuardBlocksBruteForce(t *testing.T) {
	f := newGuardFixture(t)
	ctx := context.Background()
	for _, gw := range []string{f.in.gateway, f.second.gateway} {
		if st, body := f.status(t, gw, f.key); st != http.StatusOK {
			t.Fatalf("valid key before any failure: %d %s", st, body)
		}
	}
	const wrong = "aegis_wrongwrongwrongwrongwrong"
	for i := range 6 { // more than 5
		if st, body := f.status(t, f.in.gateway, wrong); st != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d %s, want 401", i+1, st, body)
		}
	}
	var body []byte
	eventually(t, 5*time.Second, "the valid key refused from the blocked address", func() bool {
		var st int
		st, body = f.status(t, f.in.gateway, f.key)
		return st == http.StatusForbidden
	})
	if msg, _ := errorBody(t, body); msg != "forbidden" {
		t.Errorf("blocked answer says %q, want the plain forbidden", msg)
	}
	// Blocked before routing: an undeclared path is 403 too, not 404.
	if st, _, _ := call(t, f.in.gateway, "GET", "/nowhere", "", nil); st != http.StatusForbidden {
		t.Errorf("undeclared path from a blocked address: %d, want 403", st)
	}

	// One security line with the alert marker, naming rule, address,
	// count and window, and never the key tried.
	// The block is in force as soon as it is stored; its line is written
	// right after, so it may come a moment after the first 403.
	var lines []map[string]any
	eventually(t, 5*time.Second, "the block's security line", func() bool {
		lines = f.in.logs.Messages("guard blocked address")
		return len(lines) > 0
	})
	if len(lines) != 1 {
		t.Fatalf("%d block lines, want 1", len(lines))
	}
	for k, want := range map[string]any{"security": true, "alert": true, "rule": "brute_force", "remote": "127.0.0.1", "count": 6.0, "window": "1m0s", "expires_in": "15m0s"} {
		if lines[0][k] != want {
			t.Errorf("block line %s = %v, want %v", k, lines[0][k], want)
		}
	}
	if strings.Contains(f.in.logs.String(), wrong) {
		t.Error("the wrong key tried is in the server log")
	}
	if got := f.in.srv.Metrics().GuardBlocks("brute_force"); got != 1 {
		t.Errorf("aegis_guard_blocks_total{rule=brute_force} = %v, want 1", got)
	}

	// The admin listener is never blocked: the CLI lists the block.
	blocks := f.blocks(t)
	if len(blocks) != 1 {
		t.Fatalf("blocks: %v", blocks)
	}
	b := blocks[0]
	for k, want := range map[string]any{"kind": "address", "target": "127.0.0.1", "rule": "brute_force", "count": 6.0, "window": "1m0s"} {
		if b[k] != want {
			t.Errorf("block %s = %v, want %v", k, b[k], want)
		}
	}
	id, _ := b["id"].(string)
	created, err1 := time.Parse(time.RFC3339, b["created"].(string))
	expires, err2 := time.Parse(time.RFC3339, b["expires"].(string))
	if id == "" || err1 != nil || err2 != nil || expires.Sub(created) != 15*time.Minute {
		t.Errorf("block id %q created %v expires %v", id, b["created"], b["expires"])
	}

	// The second server enforces the block it never counted.
	eventually(t, 5*time.Second, "the block enforced by the second server", func() bool {
		st, _ := f.status(t, f.second.gateway, f.key)
		return st == http.StatusForbidden
	})

	// A viewer may list but not lift; the CLI lifts as the admin.
	viewer, err := f.in.admin.CreateAdminToken(ctx, "guard-viewer", client.RoleViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as(f.in, viewer.Token).LiftGuardBlock(ctx, id); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("viewer lifting a block: %v, want permission denied", err)
	}
	code, out, errs := aegisCLI(t, f.in, "guard", "lift", id)
	if code != 0 || !strings.Contains(out, "lifted "+id) {
		t.Fatalf("aegis guard lift: %d %s %s", code, out, errs)
	}
	if st, body := f.status(t, f.in.gateway, f.key); st != http.StatusOK {
		t.Fatalf("valid key after the lift: %d %s", st, body)
	}
	eventually(t, 5*time.Second, "the lift reaching the second server", func() bool {
		st, _ := f.status(t, f.second.gateway, f.key)
		return st == http.StatusOK
	})
	if code, _, _ := aegisCLI(t, f.in, "guard", "lift", id); code == 0 {
		t.Error("lifting a lifted block succeeded")
	}
	if len(f.blocks(t)) != 0 {
		t.Error("a lifted block is still listed")
	}

	// The audit log has the block (a security record) and the lift (an
	// admin change, with its rule and target).
	eventually(t, 5*time.Second, "the block and the lift in the audit log", func() bool {
		recs, err := f.in.admin.Audit(ctx, client.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var placed, lifted bool
		for _, r := range recs {
			placed = placed || r.Kind == "security" && r.Action == "guard blocked address" && r.Address == "127.0.0.1" && r.Detail["reason"] == "brute_force"
			lifted = lifted || r.Action == "guard.lift" && r.Outcome == "ok" && r.Target == id && r.Detail["rule"] == "brute_force" && r.Detail["target"] == "127.0.0.1"
		}
		return placed && lifted
	})
}

// TestGuardBlocksShadowAPIProbing: requests for paths no route declares get
// the address blocked; the listing says which rule did it.
func TestGuardBlocksShadowAPIProbing(t *testing.T) {
	f := newGuardFixture(t)
	ctx := context.Background()
	for i := range 9 { // more than 8; without --trusted-proxy the header is not believed
		if st, body, _ := call(t, f.in.gateway, "GET", "/admin/backup-"+string(rune('a'+i)), "", nil, "X-Forwarded-For", "198.51.100.9"); st != http.StatusNotFound {
			t.Fatalf("probe %d: %d %s, want 404", i+1, st, body)
		}
	}
	eventually(t, 5*time.Second, "the prober blocked", func() bool {
		st, _ := f.status(t, f.in.gateway, f.key)
		return st == http.StatusForbidden
	})
	blocks, err := f.in.admin.GuardBlocks(ctx)
	if err != nil || len(blocks) != 1 || blocks[0].Rule != "shadow_api" || blocks[0].Target != "127.0.0.1" || blocks[0].Count != 9 {
		t.Fatalf("blocks = %+v, %v", blocks, err)
	}
	if got := f.in.srv.Metrics().GuardBlocks("shadow_api"); got != 1 {
		t.Errorf("aegis_guard_blocks_total{rule=shadow_api} = %v, want 1", got)
	}
	if _, err := f.in.admin.LiftGuardBlock(ctx, blocks[0].ID); err != nil {
		t.Fatal(err)
	}
	if st, body := f.status(t, f.in.gateway, f.key); st != http.StatusOK {
		t.Fatalf("after the lift: %d %s", st, body)
	}
}

// TestGuardBehindTrustedProxy: behind --trusted-proxy the guard blocks the
// client X-Forwarded-For names, not the proxy, and other clients of the
// same proxy go on being served.
func TestGuardBehindTrustedProxy(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.Guard.Rules = guardRules()
		c.Guard.TrustedProxies = []string{"127.0.0.0/8"}
	})
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	k, err := in.admin.CreateKey(context.Background(), "proxied")
	if err != nil {
		t.Fatal(err)
	}
	send := func(key, client string) int {
		st, _, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("x"), "X-Forwarded-For", client)
		return st
	}
	for range 6 {
		// The client's own claim (left) is never believed.
		if st := send("aegis_wrongwrongwrongwrongwrong", "127.0.0.1, 198.51.100.7"); st != http.StatusUnauthorized {
			t.Fatalf("wrong key: %d", st)
		}
	}
	eventually(t, 5*time.Second, "the proxied client blocked", func() bool { return send(k.Key, "198.51.100.7") == http.StatusForbidden })
	if st := send(k.Key, "198.51.100.8"); st != http.StatusOK {
		t.Fatalf("another client of the same proxy: %d, want 200", st)
	}
	if st, _ := (&guardFixture{}).status(t, in.gateway, k.Key); st != http.StatusOK {
		t.Fatalf("the proxy itself: %d, want 200", st)
	}
	blocks, err := in.admin.GuardBlocks(context.Background())
	if err != nil || len(blocks) != 1 || blocks[0].Target != "198.51.100.7" {
		t.Fatalf("blocks = %+v, %v", blocks, err)
	}
}
