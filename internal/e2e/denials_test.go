package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/client"
)

// TestDenialsInFunctionLog: what a developer reads in `aegis logs` for
// their function explains its failures. A kv.put without a grant is there
// with the capability, the table and key and the reason, and never the
// value; a timeout, an oversized response and a panic are there under their
// request ids with the reason, the panic with the function's own message.
func TestDenialsInFunctionLog(t *testing.T) {
	in, key := sharedServer(t)
	const value = "value-that-must-stay-out-of-logs-5c1e"
	o, denied := probe(t, in.gateway, key, "probe", "kv-put", map[string]any{"table": "greetings", "key": "last", "value": value})
	if !o.Denied {
		t.Fatalf("kv.put to an ungranted table: %+v", o)
	}

	// A sleep, not a busy loop, runs into the timeout: the same record, and
	// no CPU taken from the tests running beside this one.
	st, _, hdr := call(t, in.gateway, "POST", "/slow/sleep", key, `{"size":2000}`)
	if st != http.StatusGatewayTimeout {
		t.Fatalf("sleep on slow: status %d", st)
	}
	timedOut := hdr.Get("X-Request-Id")
	st, _, hdr = call(t, in.gateway, "POST", "/small/huge", key, `{"size":131072}`)
	if st != http.StatusBadGateway {
		t.Fatalf("huge on small: status %d", st)
	}
	tooLarge := hdr.Get("X-Request-Id")
	st, body, hdr := call(t, in.gateway, "POST", "/probe/panic", key, "{}")
	// The gateway's client gets the generic body and no more.
	if msg, _ := errorBody(t, body); st != http.StatusInternalServerError || msg != "function failed" || hdr.Get(adminapi.HeaderFunctionError) != "" {
		t.Errorf("panic through the gateway: %d %s %q", st, body, hdr.Get(adminapi.HeaderFunctionError))
	}
	panicked := hdr.Get("X-Request-Id")

	// The text `aegis logs` prints, function by function.
	want := map[string][]string{
		"probe": {"warn  probe/probe capability denied capability=kv.put resource=greetings/last reason=\"no kv grant\" version=",
			"request_id=" + denied},
		"slow":  {"error probe/slow invocation failed reason=timeout error=", "request_id=" + timedOut},
		"small": {`error probe/small invocation failed reason="response too large" error=`, "request_id=" + tooLarge},
		"probe/panic": {`error probe/probe invocation failed reason="function error" error="function failed: panic: probe panicked on purpose"`,
			"request_id=" + panicked},
	}
	for name, parts := range want {
		fn, _, _ := strings.Cut(name, "/")
		var out string
		eventually(t, 5*time.Second, "aegis logs to show "+name, func() bool {
			code, o, errs := aegisCLI(t, in, "logs", "--app", "probe", "--function", fn, "--limit", "1000")
			if code != 0 {
				t.Fatalf("aegis logs: exit %d: %s", code, errs)
			}
			out = o
			return lineWith(out, parts...) != ""
		})
		if strings.Contains(out, value) {
			t.Errorf("aegis logs --function %s prints the value the function tried to write", fn)
		}
		if strings.Contains(out, "failure code") {
			t.Errorf("aegis logs --function %s shows the platform's failure code, not the function's message:\n%s", fn, lineWith(out, parts...))
		}
	}

	// The same denial as the admin API hands it to any tool: the fields
	// by name.
	var rec client.LogRecord
	_ = in.admin.Logs(context.Background(), client.LogQuery{App: "probe", Function: "probe", Limit: 1000}, func(r client.LogRecord) error {
		if r.RequestID == denied && r.Msg == "capability denied" {
			rec = r
		}
		return nil
	})
	if rec.Attrs["capability"] != "kv.put" || rec.Attrs["resource"] != "greetings/last" || rec.Attrs["reason"] != "no kv grant" || rec.Level != "warn" {
		t.Errorf("denial record %+v", rec)
	}
}

// TestInvokeShowsFunctionMessage: `aegis invoke` of a function that fails
// prints the function's own message, the admin API carries it in a header
// beside the generic body, and a call without a message is not given one.
func TestInvokeShowsFunctionMessage(t *testing.T) {
	in, _ := sharedServer(t)
	code, out, errs := aegisCLI(t, in, "invoke", "probe", "probe", "-d", `{"op":"panic"}`)
	if code != 1 || !strings.Contains(errs, "HTTP 500") || !strings.Contains(errs, "function failed: panic: probe panicked on purpose") {
		t.Errorf("invoke of a panic: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(errs, "failure code") || strings.Contains(errs, "goroutine") {
		t.Errorf("invoke shows platform detail or the stack: %q", errs)
	}
	res, err := in.admin.Invoke(context.Background(), "slow", "slow", []byte(`{"op":"sleep","size":2000}`))
	if err != nil {
		t.Fatal(err)
	}
	// Not the probe app: an unknown app is 404 with no message either.
	if res.Status != http.StatusNotFound || res.FunctionError != "" {
		t.Errorf("invoke of an unknown app: %d %q", res.Status, res.FunctionError)
	}
	res, err = in.admin.Invoke(context.Background(), "probe", "slow", []byte(`{"op":"sleep","size":2000}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusGatewayTimeout || res.FunctionError != "" {
		t.Errorf("invoke of a timeout: %d, function message %q (a timeout is the platform's to explain)", res.Status, res.FunctionError)
	}
}

// lineWith returns the first line of out that contains every part.
func lineWith(out string, parts ...string) string {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	return ""
}

// The per-invocation caps stop a handler that publishes without end at
// max_publishes, with a permission-style error it can read and a security
// line; the next invocation starts afresh.
func TestPerInvocationCaps(t *testing.T) {
	in, key := sharedServer(t)
	for range 2 {
		o, reqID := probe(t, in.gateway, key, "capped", "publish-n", map[string]any{"topic": "jobs.capped", "value": "x", "size": 10})
		if o.OK || o.Value != "3" || !strings.Contains(o.Error, "permission denied") || !strings.Contains(o.Error, "max_publishes") {
			t.Fatalf("publishing 10 events with max_publishes 3: %+v", o)
		}
		if lines := in.logs.Lines(`"capability denied"`, reqID, `max_publishes of 3 reached`); len(lines) != 1 || lines[0]["security"] != true {
			t.Errorf("want one security line naming the cap, got %v", lines)
		}
	}
	o, _ := probe(t, in.gateway, key, "capped", "publish", map[string]any{"topic": "jobs.capped", "value": strings.Repeat("x", 1025)})
	if o.OK || !strings.Contains(o.Error, "max_event_size") {
		t.Errorf("an event over max_event_size: %+v", o)
	}
}
