package e2e

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/manifest"
)

const cappedApp = `app: budgeted
functions:
  capped:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/capped/{op}" }
    budget: { per: day, invocations: 3 }
  free:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/free/{op}" }
`

// A hard budget of three invocations a day lets exactly three run; the
// fourth is a 429 naming the budget and its reset, with Retry-After, and
// the budget stays spent after the server restarts on the same data.
// Usage is counted per caller and shown by `aegis usage`.
func TestHardBudgetStopsAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	in := startServer(t, dir)
	if _, err := deployWith(in, writeManifest(t, cappedApp), probeModule(t)); err != nil {
		t.Fatal(err)
	}
	k, err := in.admin.CreateKey(context.Background(), "budget-e2e")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if status, body, _ := call(t, in.gateway, "POST", "/capped/echo", k.Key, "{}"); status != 200 {
			t.Fatalf("invocation %d: %d %s", i, status, body)
		}
	}
	checkSpent := func(in *instance) {
		t.Helper()
		status, body, hdr := call(t, in.gateway, "POST", "/capped/echo", k.Key, "{}")
		var b map[string]string
		if err := json.Unmarshal(body, &b); err != nil || status != 429 {
			t.Fatalf("after the budget: %d %s", status, body)
		}
		resets := manifest.WindowDay.End(time.Now())
		if b["error"] != "budget exhausted" || b["budget"] != "function" || b["resets_at"] != resets.Format(time.RFC3339) ||
			b["request_id"] != hdr.Get("X-Request-Id") || b["request_id"] == "" {
			t.Fatalf("429 body %s", body)
		}
		ra, err := strconv.Atoi(hdr.Get("Retry-After"))
		if want := time.Until(resets).Seconds(); err != nil || math.Abs(float64(ra)-want) > 5 {
			t.Fatalf("Retry-After %q, want about %.0f", hdr.Get("Retry-After"), want)
		}
		if lineWith(in.logs.String(), `"invocation refused"`, `"security":true`, `"reason":"budget exhausted"`, b["request_id"]) == "" {
			t.Fatal("no security line for the refusal")
		}
	}
	checkSpent(in)
	// The refusal is counted, as an operator reads it.
	refusals := `aegis_budget_refusals_total{app="budgeted",function="capped",scope="function"}`
	if _, m := scrape(t, in, in.srv.AdminToken()); m[refusals] != 1 {
		t.Errorf("%s = %v after one refusal, want 1", refusals, m[refusals])
	}
	// Another function of the app has no budget.
	if status, body, _ := call(t, in.gateway, "POST", "/free/echo", k.Key, "{}"); status != 200 {
		t.Fatalf("unbudgeted function: %d %s", status, body)
	}

	in.close(t)
	in = startServer(t, dir)
	defer in.close(t)
	checkSpent(in)

	code, out, errOut := aegisCLI(t, in, "usage", "--app", "budgeted", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis usage: exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("aegis usage -o json: %v\n%s", err, out)
	}
	want := map[string][2]float64{"capped": {3, 2}, "free": {1, 0}}
	if len(rows) != 2 {
		t.Fatalf("rows %s", out)
	}
	for _, r := range rows {
		for _, field := range []string{"app", "function", "caller", "invocations", "gb_seconds", "egress_bytes", "rejected"} {
			if _, ok := r[field]; !ok {
				t.Errorf("row without %s: %v", field, r)
			}
		}
		w, ok := want[r["function"].(string)]
		if !ok || r["app"] != "budgeted" || r["caller"] != "key:budget-e2e" || r["invocations"] != w[0] || r["rejected"] != w[1] ||
			r["gb_seconds"].(float64) <= 0 {
			t.Errorf("row %v", r)
		}
	}
	code, out, _ = aegisCLI(t, in, "usage", "--app", "budgeted", "--by", "caller")
	if code != 0 || lineWith(out, "budgeted", "key:budget-e2e", " 4 ", " 2") == "" {
		t.Errorf("aegis usage --by caller: exit %d\n%s", code, out)
	}
	states, err := in.admin.Budgets(context.Background(), "budgeted")
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].Scope != "function" || states[0].Function != "capped" || states[0].Invocations != 3 ||
		states[0].InvocationsLimit != 3 || !states[0].Exhausted || states[0].Mode != "hard" {
		t.Fatalf("budgets %+v", states)
	}
	// A viewer limited to another app sees none of this app's usage.
	other, err := in.admin.CreateAdminToken(context.Background(), "other-viewer", "viewer", []string{"elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as(in, other.Token).Usage(context.Background(), client.UsageQuery{App: "budgeted"}); err == nil {
		t.Error("a viewer of another app read this app's usage")
	}
	if rows, err := as(in, other.Token).Usage(context.Background(), client.UsageQuery{}); err != nil || len(rows) != 0 {
		t.Errorf("a viewer of another app listed %v, %v", rows, err)
	}
	if states, err := as(in, other.Token).Budgets(context.Background(), ""); err != nil || len(states) != 0 {
		t.Errorf("a viewer of another app listed budgets %v, %v", states, err)
	}
	if code, out, _ := aegisCLI(t, in, "usage", "--budgets"); code != 0 || lineWith(out, "function", "budgeted/capped", "3/3", "exhausted") == "" {
		t.Errorf("aegis usage --budgets: exit %d\n%s", code, out)
	}
}

const heldApp = `app: held
functions:
  producer:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/producer/{op}" }
    grants:
      kv: { write: [events] }
      events: { publish: [work.item] }
  worker:
    source: ./probe
    triggers:
      - event: { topic: work.item, max_attempts: 1 }
    grants:
      kv: { write: [events] }
    budget: { per: day, invocations: LIMIT }
`

// Events for a function whose budget is spent wait in their stream, more
// deliveries than their attempts allow, and all run once a deploy raises
// the budget: none lost, none dead-lettered.
func TestEventsWaitForBudget(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	deploy := func(limit int) {
		t.Helper()
		text := []byte(heldApp)
		text = []byte(string(text[:len(text)-len("LIMIT }\n")]) + strconv.Itoa(limit) + " }\n")
		if _, err := deployWith(in, writeManifest(t, string(text)), probeModule(t)); err != nil {
			t.Fatal(err)
		}
	}
	deploy(1)
	k, err := in.admin.CreateKey(context.Background(), "held-e2e")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 4 {
		o, reqID := probe(t, in.gateway, k.Key, "producer", "publish", map[string]any{"topic": "work.item", "value": strconv.Itoa(i)})
		if !o.OK {
			t.Fatalf("publish: %s", o.Error)
		}
		ids = append(ids, reqID)
	}
	ran := func() int {
		n := 0
		for _, id := range ids {
			if o, _ := probe(t, in.gateway, k.Key, "producer", "kv-get", map[string]any{"table": "events", "key": id}); o.OK {
				n++
			}
		}
		return n
	}
	ctx := context.Background()
	// Each held event is refused again at every recheck: wait until every
	// one of the three has been delivered more often than max_attempts + 1.
	eventually(t, 40*time.Second, "the held events to be rechecked twice each", func() bool {
		rows, err := in.admin.Usage(ctx, client.UsageQuery{App: "held", By: "function"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Function == "worker" {
				return r.Rejected >= 3*3
			}
		}
		return false
	})
	if n := ran(); n != 1 {
		t.Fatalf("%d events ran under a budget of 1", n)
	}
	deploy(10)
	eventually(t, 20*time.Second, "every held event to run after the budget was raised", func() bool { return ran() == 4 })
	dls, err := in.admin.DLQ(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 0 {
		t.Fatalf("dead letters: %+v", dls)
	}
	if len(in.logs.Messages("event held for budget")) != 3 {
		t.Errorf("want one hold line per held event:\n%s", in.logs)
	}
}

const alertApp = `app: watched
functions:
  watched:
    source: ./probe
    triggers:
      - http: { method: POST, path: "/watched/{op}" }
    budget: { per: month, invocations: 5, mode: alert }
`

// An alert budget refuses nothing: it logs and counts an alert at 80 %
// and at 100 %, once each.
func TestAlertBudget(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	if _, err := deployWith(in, writeManifest(t, alertApp), probeModule(t)); err != nil {
		t.Fatal(err)
	}
	k, err := in.admin.CreateKey(context.Background(), "alert-e2e")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if status, body, _ := call(t, in.gateway, "POST", "/watched/echo", k.Key, "{}"); status != 200 {
			t.Fatalf("invocation %d refused in alert mode: %d %s", i, status, body)
		}
		if i == 3 || i == 4 {
			time.Sleep(700 * time.Millisecond) // a flush between 4 and 5 and after 5
		}
	}
	eventually(t, 5*time.Second, "both alerts", func() bool { return len(in.logs.Messages("budget alert")) >= 2 })
	time.Sleep(time.Second) // further flushes raise nothing more
	alerts := in.logs.Messages("budget alert")
	if len(alerts) != 2 || alerts[0]["reason"] != "budget 80% used" || alerts[1]["reason"] != "budget 100% used" {
		t.Fatalf("alerts %v", alerts)
	}
	for _, a := range alerts {
		if a["app"] != "watched" || a["function"] != "watched" || a["budget"] != "function" || a["window"] != "month" || a["security"] != true {
			t.Errorf("alert %v", a)
		}
	}
	m := in.srv.Metrics()
	if m.BudgetAlerts("watched", "watched", "function", "80") != 1 || m.BudgetAlerts("watched", "watched", "function", "100") != 1 {
		t.Error("aegis_budget_alerts_total")
	}
}

const tickingApp = `app: ticking
functions:
  ticker:
    source: ./probe
    triggers:
      - schedule: { cron: "@every 1s" }
    grants:
      kv: { write: [events] }
    budget: { per: day, invocations: 2 }
`

// A schedule whose budget is spent skips its runs and says so.
func TestScheduleSkipsWhenBudgetSpent(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	if _, err := deployWith(in, writeManifest(t, tickingApp), probeModule(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "two skipped runs", func() bool { return len(in.logs.Messages("scheduled run skipped")) >= 2 })
	rows, err := in.admin.Usage(context.Background(), client.UsageQuery{App: "ticking"})
	if err != nil {
		t.Fatal(err)
	}
	var ran, skipped int64
	for _, r := range rows {
		ran, skipped = ran+r.Invocations, skipped+r.Rejected
	}
	if ran != 2 || skipped < 2 {
		t.Fatalf("ran %d, skipped %d; rows %+v", ran, skipped, rows)
	}
	for _, l := range in.logs.Messages("scheduled run skipped") {
		if l["app"] != "ticking" || l["function"] != "ticker" || l["reason"] != "budget exhausted" {
			t.Errorf("skip line %v", l)
		}
	}
}
