package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/audit"
	"github.com/aegis-platform/aegis/internal/server"
)

// auditList reads the audit log through the CLI, as JSON.
func auditList(t *testing.T, in *instance) []client.AuditRecord {
	t.Helper()
	code, out, errs := aegisCLI(t, in, "audit", "list", "--limit", "10000", "-o", "json")
	if code != 0 {
		t.Fatalf("audit list: exit %d %s", code, errs)
	}
	var recs []client.AuditRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("audit list -o json: %v: %s", err, out)
	}
	return recs
}

// TestAuditRecordsAndVerifies: changes made through the admin API are in
// `aegis audit list` with who made them and from where, intent before
// outcome; no secret is in any record; the live chain verifies, a record
// forged into the stream is named, and an export's edits, deletions,
// insertions and reorderings are each named offline.
func TestAuditRecordsAndVerifies(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	ctx := context.Background()
	deployProbe(t, in, "testdata/probe.yaml")
	key, err := in.admin.CreateKeyWithOptions(ctx, "audited", client.KeyOptions{Scopes: []string{"probe"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := in.admin.CreateAdminToken(ctx, "ops", "operator", nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := in.admin.CreateWebhookSecret(ctx, "probe", "hook")
	if err != nil {
		t.Fatal(err)
	}
	// An operator token reads the log too; a viewer's may not.
	viewer, err := in.admin.CreateAdminToken(ctx, "look", "viewer", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(in.srv.AdminURL(), viewer.Token).Audit(ctx, client.AuditQuery{}); !isStatus(err, http.StatusForbidden) {
		t.Errorf("a viewer read the audit log: %v", err)
	}
	if _, err := client.New(in.srv.AdminURL(), tok.Token).Audit(ctx, client.AuditQuery{}); err != nil {
		t.Errorf("an operator could not read the audit log: %v", err)
	}

	recs := auditList(t, in)
	find := func(action, outcome string) *client.AuditRecord {
		for i := range recs {
			if recs[i].Action == action && recs[i].Outcome == outcome {
				return &recs[i]
			}
		}
		t.Fatalf("no %s record with outcome %s in %+v", action, outcome, recs)
		return nil
	}
	deploy := find("deploy", "ok")
	if deploy.Actor != "root" || deploy.Address != "127.0.0.1" || deploy.Target != "probe" ||
		deploy.Detail["version"] != "v1" || len(deploy.Detail["manifest_sha256"]) != 64 {
		t.Errorf("deploy record %+v", deploy)
	}
	if intent := find("deploy", "intent"); intent.Seq >= deploy.Seq || intent.RequestID != deploy.RequestID {
		t.Errorf("the deploy's intent %+v is not before its outcome %+v", intent, deploy)
	}
	if k := find("key.create", "ok"); k.Target != "audited" || k.Detail["scopes"] != "probe" || k.Actor != "root" || k.Address != "127.0.0.1" {
		t.Errorf("key record %+v", k)
	}
	if tr := find("token.create", "ok"); tr.Target != "ops" || tr.Detail["role"] != "operator" {
		t.Errorf("token record %+v", tr)
	}
	find("webhook_secret.create", "ok")

	// Verified on the server: exit 0.
	if code, out, errs := aegisCLI(t, in, "audit", "verify"); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: exit %d %s %s", code, out, errs)
	}
	exported := filepath.Join(t.TempDir(), "audit.ndjson")
	if code, _, errs := aegisCLI(t, in, "audit", "export", "--out", exported); code != 0 {
		t.Fatalf("audit export: exit %d %s", code, errs)
	}
	text, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"API key": key.Key, "admin token": tok.Token, "webhook secret": secret.Secret,
		"root token": in.srv.AdminToken()} {
		if strings.Contains(string(text), s) {
			t.Errorf("the %s is in the audit log", name)
		}
	}
	checkExportTampering(t, in, exported, string(text))

	// A record written into the stream by someone without the key is
	// named; deleting a record is refused by the stream.
	last := recs[len(recs)-1]
	node := outsider(t, in)
	forged := audit.Record{Seq: last.Seq + 1, Time: time.Now().UTC(), Kind: audit.KindAdmin, Actor: "root",
		Address: "127.0.0.1", Action: "key.revoke", Target: "audited", Outcome: audit.OutcomeOK, Prev: last.Hash}
	forged.Hash = forged.ComputeHash()
	forged.Signature = "c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ"
	data, _ := json.Marshal(forged)
	if _, err := node.Publish(ctx, "aegis.audit", data, nil, ""); err != nil {
		t.Fatal(err)
	}
	code, _, errs := aegisCLI(t, in, "audit", "verify")
	if code != 1 || !strings.Contains(errs, "record "+strconv.FormatUint(forged.Seq, 10)+" ") || !strings.Contains(errs, "forged") {
		t.Fatalf("verify after a forged record: exit %d %q", code, errs)
	}
	if err := node.DeleteStreamMessage(ctx, audit.StreamName, 2); err == nil {
		t.Error("an audit record could be deleted from the stream")
	}
	// Changes go on after the forgery, chained onto it, and the report
	// still names the forged record first.
	if _, err := in.admin.CreateKey(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := aegisCLI(t, in, "audit", "verify"); code != 1 || !strings.Contains(errs, "record "+strconv.FormatUint(forged.Seq, 10)+" ") {
		t.Fatalf("verify after more changes: exit %d %q", code, errs)
	}
}

// checkExportTampering edits, deletes, inserts and reorders lines of an
// export and runs `aegis audit verify --file` on each, which must name the
// first bad line.
func checkExportTampering(t *testing.T, in *instance, path, text string) {
	t.Helper()
	if code, out, errs := aegisCLI(t, in, "audit", "verify", "--file", path); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("verify --file of an untouched export: exit %d %s %s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 8 {
		t.Fatalf("export of %d lines", len(lines))
	}
	edit := func(i int) []string { // line i (1-based) with its actor changed
		out := append([]string(nil), lines...)
		var r map[string]any
		if err := json.Unmarshal([]byte(out[i-1]), &r); err != nil {
			t.Fatal(err)
		}
		r["target"] = "someone-else"
		b, _ := json.Marshal(r)
		out[i-1] = string(b)
		return out
	}
	del := func(i int) []string { return append(append([]string(nil), lines[:i-1]...), lines[i:]...) }
	insert := func(at, from int) []string { // a copy of line from, as line at
		out := append([]string(nil), lines[:at-1]...)
		out = append(out, lines[from-1])
		return append(out, lines[at-1:]...)
	}
	swap := func(i int) []string {
		out := append([]string(nil), lines...)
		out[i-1], out[i] = out[i], out[i-1]
		return out
	}
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"edited", edit(5), "line 5: record 4 modified"},
		{"deleted", del(5), "line 5: record 4 deleted"},
		{"inserted", insert(7, 3), "line 7: record 2 inserted"},
		{"reordered", swap(5), "line 5: record 5 reordered"},
		{"garbled", append(append([]string(nil), lines[:3]...), `{"seq":`), "line 4: record 3 unreadable"},
	} {
		p := filepath.Join(t.TempDir(), c.name+".ndjson")
		if err := os.WriteFile(p, []byte(strings.Join(c.lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errs := aegisCLI(t, in, "audit", "verify", "--file", p)
		if code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%s export: exit %d %q, want exit 1 naming %q", c.name, code, errs, c.want)
		}
	}
	// The file's own key can be replaced along with every signature; a key
	// kept elsewhere still catches that.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if code, _, errs := aegisCLI(t, in, "audit", "verify", "--file", path, "--public-key", audit.EncodePublicKey(other)); code != 1 || !strings.Contains(errs, "line 2:") {
		t.Errorf("verify with another key: exit %d %q", code, errs)
	}
}

func isStatus(err error, status int) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}

// TestAuditFailClosed: when the audit stream cannot take another record
// (here: full at its bound, which refuses new records rather than dropping
// old ones), admin changes answer 503 and are not made.
func TestAuditFailClosed(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Audit.MaxBytes = 8 << 10 })
	defer in.close(t)
	ctx := context.Background()
	refused := ""
	for i := 0; refused == "" && i < 200; i++ {
		name := "k" + strconv.Itoa(i)
		_, err := in.admin.CreateKey(ctx, name)
		switch {
		case isStatus(err, http.StatusServiceUnavailable):
			if !strings.Contains(err.Error(), "audit log unavailable") {
				t.Fatalf("503 without naming the audit log: %v", err)
			}
			refused = name
		case err != nil:
			t.Fatal(err)
		}
	}
	if refused == "" {
		t.Fatal("an 8 KiB audit stream took 200 key creations")
	}
	keys, err := in.admin.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == refused {
			t.Fatalf("key %s was created although its audit record was refused", refused)
		}
	}
	if _, err := deployWith(in, "testdata/probe.yaml", probeModule(t)); !isStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("deploy with a full audit stream: %v, want 503", err)
	}
	apps, err := in.admin.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 0 {
		t.Fatalf("the app was deployed although the audit log refused: %+v", apps)
	}
	// Reading still works, and the chain still verifies.
	v, err := in.admin.AuditVerify(ctx)
	if err != nil || !v.OK {
		t.Fatalf("verify of the full chain: %+v %v", v, err)
	}
}

// TestAuditSecurityAggregated: a burst of failed admin authentications is
// one security record per window with its count, not a record per request.
func TestAuditSecurityAggregated(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Audit.SecurityWindow = 200 * time.Millisecond })
	defer in.close(t)
	bad := client.New(in.srv.AdminURL(), "aegisadm_wrong")
	const n = 30
	for range n {
		if _, err := bad.Apps(context.Background()); !isStatus(err, http.StatusUnauthorized) {
			t.Fatalf("bad token: %v", err)
		}
	}
	var records, count int
	eventually(t, 10*time.Second, "the failures to be counted in security records", func() bool {
		records, count = 0, 0
		for _, r := range auditList(t, in) {
			if r.Kind == audit.KindSecurity && r.Action == "admin authentication failed" {
				records++
				c, _ := strconv.Atoi(r.Detail["count"])
				count += c
				if r.Address != "127.0.0.1" {
					t.Fatalf("security record without the address: %+v", r)
				}
			}
		}
		return count == n
	})
	if records >= n/2 {
		t.Fatalf("%d security records for %d failures: not aggregated", records, n)
	}
}

// A function's refused host call is a security event in the audit log:
// counted in a "capability denied" record naming the app and function.
// `aegis audit list --since` keeps what is recent and drops what is not.
func TestAuditCapabilityDenialAndSince(t *testing.T) {
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.Audit.SecurityWindow = 200 * time.Millisecond })
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	k, err := in.admin.CreateKey(context.Background(), "audit-denial")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := probe(t, in.gateway, k.Key, "probe", "kv-put", map[string]any{"table": "greetings", "key": "k", "value": "v"}); !o.Denied {
		t.Fatalf("kv-put outside the grants: %+v", o)
	}
	eventually(t, 10*time.Second, "the denial's security record", func() bool {
		for _, r := range auditList(t, in) {
			if r.Kind == audit.KindSecurity && r.Action == "capability denied" && r.Target == "probe/probe" && r.Detail["count"] == "1" {
				return true
			}
		}
		return false
	})

	since := func(d string) []client.AuditRecord {
		code, out, errs := aegisCLI(t, in, "audit", "list", "--since", d, "-o", "json")
		if code != 0 {
			t.Fatalf("audit list --since %s: exit %d %s", d, code, errs)
		}
		var recs []client.AuditRecord
		if err := json.Unmarshal([]byte(out), &recs); err != nil {
			t.Fatalf("audit list --since %s: %v: %s", d, err, out)
		}
		return recs
	}
	if recs := since("1h"); len(recs) == 0 {
		t.Error("audit list --since 1h: nothing, though the deploy and key were just recorded")
	}
	time.Sleep(50 * time.Millisecond)
	recent := since("10ms")
	for _, r := range recent {
		if time.Since(r.Time) > 5*time.Second {
			t.Errorf("audit list --since 10ms listed a record of %v", r.Time)
		}
	}
	if len(recent) >= len(since("1h")) {
		t.Errorf("--since 10ms listed %d records, as many as --since 1h", len(recent))
	}
}
