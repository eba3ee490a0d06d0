package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/funclog"
	"github.com/aegis-platform/aegis/internal/server"
)

// scrape reads GET /metrics on the admin listener with token ("" sends
// none) and returns the status and every sample by its series as the
// exposition writes it (name{labels sorted}).
func scrape(t testing.TB, in *instance, token string) (int, map[string]float64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, in.srv.AdminURL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return resp.StatusCode, out
}

// The metrics move by what a test did: known invocations, a denial, a
// failed authentication, a timed-out invocation and the cold start after
// it. They are read the way an operator reads them: GET /metrics with a
// viewer token, which is refused without one.
func TestMetricsMoveByKnownAmounts(t *testing.T) {
	in := startServer(t, t.TempDir())
	defer in.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	ctx := context.Background()
	k, err := in.admin.CreateKey(ctx, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := in.admin.CreateAdminToken(ctx, "dashboards", "viewer", nil)
	if err != nil {
		t.Fatal(err)
	}
	status, before := scrape(t, in, viewer.Token)
	if status != http.StatusOK {
		t.Fatalf("viewer scrape: %d", status)
	}
	if status, _ := scrape(t, in, ""); status != http.StatusUnauthorized {
		t.Fatalf("scrape without a token: %d, want 401", status)
	}

	for range 3 {
		if status, body, _ := call(t, in.gateway, "POST", "/probe/echo", k.Key, map[string]any{}); status != 200 {
			t.Fatalf("echo: %d %s", status, body)
		}
	}
	if o, _ := probe(t, in.gateway, k.Key, "probe", "kv-put", map[string]any{"table": "greetings", "key": "k", "value": "v"}); !o.Denied {
		t.Fatalf("kv-put without a grant: %+v", o)
	}
	if status, _, _ := call(t, in.gateway, "POST", "/probe/echo", "", map[string]any{}); status != http.StatusUnauthorized {
		t.Fatalf("echo without a key: %d", status)
	}
	if status, body, _ := call(t, in.gateway, "POST", "/slow/sleep", k.Key, map[string]any{"size": 2000}); status != http.StatusGatewayTimeout {
		t.Fatalf("sleep past the timeout: %d %s", status, body)
	}
	// The timed-out instance was discarded: the next call makes a new one.
	if status, body, _ := call(t, in.gateway, "POST", "/slow/sleep", k.Key, map[string]any{"size": 0}); status != 200 {
		t.Fatalf("short sleep: %d %s", status, body)
	}

	// An event its function fails on both attempts: one redelivery, then
	// a dead letter.
	if o, _ := probe(t, in.gateway, k.Key, "probe", "publish", map[string]any{"topic": "jobs.fail", "value": `{"job":1}`}); !o.OK {
		t.Fatalf("publish: %+v", o)
	}
	deadLetter := `aegis_dead_letters_total{app="probe",function="failing",reason="attempts"}`
	var after map[string]float64
	eventually(t, 20*time.Second, "the dead letter", func() bool {
		_, after = scrape(t, in, viewer.Token)
		return after[deadLetter] >= 1
	})
	moved := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		// Three echoes, the kv-put (which the function answered) and the
		// publish.
		`aegis_invocations_total{app="probe",function="probe",outcome="success",trigger="http"}`:        5,
		`aegis_invocation_duration_seconds_count{app="probe",function="probe",trigger="http"}`:          5,
		`aegis_invocations_total{app="probe",function="slow",outcome="timeout",trigger="http"}`:         1,
		`aegis_invocations_total{app="probe",function="slow",outcome="success",trigger="http"}`:         1,
		`aegis_permission_denials_total{app="probe",capability="kv.put",function="probe"}`:              1,
		`aegis_auth_failures_total{reason="missing credentials",scheme="none"}`:                         1,
		`aegis_auth_failures_total{reason="malformed",scheme="admin_token"}`:                            1,
		`aegis_cold_starts_total{app="probe",function="slow"}`:                                          1,
		`aegis_events_redelivered_total{app="probe",function="failing",trigger="event:jobs.fail"}`:      1,
		`aegis_log_records_dropped_total{log="function"}`:                                               0,
		`aegis_invocations_total{app="probe",function="probe",outcome="function_error",trigger="http"}`: 0,
	} {
		if got := moved(series); got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if _, ok := after[`aegis_log_records_dropped_total{log="function"}`]; !ok {
		t.Error("no function log drop counter")
	}
	if got := after[`aegis_warm_instances{app="probe",function="probe"}`]; got < 1 {
		t.Errorf("warm instances of probe/probe = %v, want at least 1", got)
	}
	// Every event trigger of the app has its pending count, at zero.
	if got, ok := after[`aegis_events_pending{app="probe",function="failing",trigger="event:jobs.fail"}`]; !ok || got != 0 {
		t.Errorf("pending events of probe/failing = %v (reported %v)", got, ok)
	}
}

// A function log that has stopped answering does not hold up invocations:
// 200 of them finish while not one record gets written, what does not fit
// the queue is counted, and once the log answers again the function's log
// says how many records it lost.
func TestStuckFunctionLogNeverBlocksInvocations(t *testing.T) {
	sink := &stuckSink{release: make(chan struct{})}
	const queue, calls = 16, 200
	in := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.FunctionLogs = funclog.Options{Sink: sink, QueueSize: queue}
	})
	defer in.close(t)
	released := false
	release := func() {
		if !released {
			released = true
			close(sink.release)
		}
	}
	defer release() // before close: the log's writer waits in the sink
	deployProbe(t, in, "testdata/probe.yaml")
	k, err := in.admin.CreateKey(context.Background(), "logs")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range calls {
		if status, body, _ := call(t, in.gateway, "POST", "/probe/echo", k.Key, map[string]any{}); status != 200 {
			t.Fatalf("echo: %d %s", status, body)
		}
	}
	stuck := time.Since(start) / calls
	t.Logf("%d invocations with the function log stuck: %v each", calls, stuck)
	if n := sink.count(); n != 0 {
		t.Fatalf("the stuck sink wrote %d records", n)
	}
	_, samples := scrape(t, in, in.srv.AdminToken())
	lost := samples[`aegis_log_records_dropped_total{log="function"}`]
	// The writer holds one record in the sink and the queue holds 16; any
	// record of the deploy's own went the same way.
	if lost < calls-queue-1 {
		t.Fatalf("%v records dropped of %d, want at least %d", lost, calls, calls-queue-1)
	}
	release()
	// The marker counts the function's records dropped up to when the
	// writer got going again, which may include a last record queued after
	// the scrape above (an invocation's record follows its response).
	var marked int64
	eventually(t, 10*time.Second, "the marker record", func() bool {
		marked = sink.marked("probe", "probe")
		return marked > 0
	})
	_, samples = scrape(t, in, in.srv.AdminToken())
	total := samples[`aegis_log_records_dropped_total{log="function"}`]
	if marked < calls-queue-1 || float64(marked) > total {
		t.Errorf("the marker says %d records dropped; at least %d were, and %v in all", marked, calls-queue-1, total)
	}

	// The same calls with the log answering: the stuck log cost them
	// nothing (bounds generous enough for a loaded machine; a log that
	// made invocations wait would make them hang).
	start = time.Now()
	for range calls {
		if status, body, _ := call(t, in.gateway, "POST", "/probe/echo", k.Key, map[string]any{}); status != 200 {
			t.Fatalf("echo: %d %s", status, body)
		}
	}
	free := time.Since(start) / calls
	t.Logf("%d invocations with the function log answering: %v each", calls, free)
	if stuck > 2*free+time.Millisecond {
		t.Errorf("invocations took %v with the log stuck against %v with it answering", stuck, free)
	}
}

// stuckSink holds every function log record until released, then keeps
// what it is given.
type stuckSink struct {
	release chan struct{}
	mu      sync.Mutex
	got     []funclog.Record
}

func (s *stuckSink) PublishNoAck(_ string, data []byte) error {
	<-s.release
	var r funclog.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	s.mu.Lock()
	s.got = append(s.got, r)
	s.mu.Unlock()
	return nil
}

func (s *stuckSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// marked returns how many dropped records the marker records of
// app/function report in all, 0 when there is none.
func (s *stuckSink) marked(app, function string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, r := range s.got {
		if r.App != app || r.Function != function || r.Level != "warn" {
			continue
		}
		count, _ := strings.CutSuffix(r.Msg, " log records dropped")
		if r.Msg == funclog.DroppedMsg(1) {
			count = "1"
		}
		if k, err := strconv.ParseInt(count, 10, 64); err == nil && funclog.DroppedMsg(k) == r.Msg {
			n += k
		}
	}
	return n
}

// promql words that are not metric names: functions, aggregations,
// keywords and the dashboard's variables.
var promqlWords = map[string]bool{
	"sum": true, "rate": true, "increase": true, "irate": true, "histogram_quantile": true, "by": true,
	"without": true, "avg": true, "max": true, "min": true, "count": true, "topk": true, "label_values": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "and": true, "or": true, "unless": true,
	"offset": true, "bool": true,
}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames returns the metric names a PromQL expression queries.
func metricNames(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, " ")
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " ")
		if promqlWords[name] || strings.HasPrefix(rest, "(") || strings.HasPrefix(name, "$") ||
			(loc[0] > 0 && e[loc[0]-1] == '$') {
			continue
		}
		out = append(out, name)
	}
	return out
}

// Every query of the Grafana dashboard names metrics the server has:
// a renamed metric breaks this test, not an operator's dashboard.
func TestGrafanaDashboardQueriesKnownMetrics(t *testing.T) {
	in, _ := sharedServer(t)
	data, err := os.ReadFile("../../deploy/grafana/aegis.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	known := map[string]bool{}
	for _, n := range in.srv.Metrics().Names() {
		known[n] = true
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		q, ok := v.Query.(string)
		if !ok || !strings.HasPrefix(q, "label_values(") {
			continue
		}
		// label_values(metric, label): the metric is the query, the
		// label a name of its own.
		if metric, _, ok := strings.Cut(q, ","); ok {
			exprs = append(exprs, metric+")")
		}
	}
	checked := 0
	for _, expr := range exprs {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("no metric in %q", expr)
		}
		for _, n := range names {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && known[b] {
					base = b
				}
			}
			if !known[base] {
				t.Errorf("%q queries %s, which the server does not have", expr, n)
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("only %d metric names found in the dashboard", checked)
	}
	for _, want := range []string{"aegis_invocations_total", "aegis_cold_starts_total", "aegis_log_records_dropped_total"} {
		if !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("the dashboard has no panel on %s", want)
		}
	}
}

func TestMetricNamesOfPromQL(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le) (rate(aegis_invocation_duration_seconds_bucket{app=~"$app",x="a{b}"}[$__rate_interval]))) / on (app) go_goroutines`)
	if want := []string{"aegis_invocation_duration_seconds_bucket", "go_goroutines"}; !slices.Equal(got, want) {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
}
