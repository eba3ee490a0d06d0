package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
)

func TestEventCarriesRequestID(t *testing.T) {
	in, key := sharedServer(t)
	o, reqID := probe(t, in.gateway, key, "probe", "publish", map[string]any{"topic": "ok.topic", "value": `{"n":1}`})
	if !o.OK {
		t.Fatalf("publish: %s", o.Error)
	}
	// The listener stores each event under the request id it carried.
	eventually(t, 10*time.Second, "the listener to see the event", func() bool {
		o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": reqID})
		return o.OK && o.Value == `{"n":1}`
	})
	// Both hops logged under the same request id. The invocation record is
	// written after the function returns, so give it a moment.
	eventually(t, 5*time.Second, "log records of both hops", func() bool {
		fns := map[string]bool{}
		err := in.admin.Logs(context.Background(), client.LogQuery{App: "probe", Limit: 1000}, func(r client.LogRecord) error {
			if r.RequestID == reqID {
				fns[r.Function] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return fns["probe"] && fns["listener"]
	})
}

func TestFailingEventIsRetriedThenDeadLettered(t *testing.T) {
	in, key := sharedServer(t)
	ctx := context.Background()
	o, reqID := probe(t, in.gateway, key, "probe", "publish", map[string]any{"topic": "jobs.fail", "value": `{"job":7}`})
	if !o.OK {
		t.Fatalf("publish: %s", o.Error)
	}
	var dl client.DeadLetter
	eventually(t, 15*time.Second, "the event to reach the dead-letter stream", func() bool {
		list, err := in.admin.DLQ(ctx, "probe")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.RequestID == reqID {
				dl = d
				return true
			}
		}
		return false
	})
	// The error is the function's own message (the SDK logs an event
	// handler's error before it reports failure), not the platform's
	// "handler returned failure code 1".
	if dl.Attempts != 2 || dl.Function != "failing" || dl.Topic != "jobs.fail" ||
		dl.Error != "function failed: event handler failed: this event always fails" {
		t.Errorf("dead letter: %+v", dl)
	}
	if code, out, _ := aegisCLI(t, in, "dlq", "list", "--app", "probe"); code != 0 || lineWith(out, "failing", "function failed: event handler failed: this event always fails") == "" {
		t.Errorf("aegis dlq list: exit %d\n%s", code, out)
	}
	// The invocation records are written in the background; wait for both.
	attempts := 0
	eventually(t, 5*time.Second, "both failed attempts in the function log", func() bool {
		attempts = 0
		_ = in.admin.Logs(ctx, client.LogQuery{App: "probe", Function: "failing", Limit: 1000}, func(r client.LogRecord) error {
			if r.RequestID == reqID && r.Msg == "invocation failed" {
				attempts++
			}
			return nil
		})
		return attempts >= 2
	})
	if attempts != 2 {
		t.Errorf("failing function ran %d times, want 2 (max_attempts)", attempts)
	}

	// Replay puts it back on its topic with its request id; it fails again
	// and comes back to the dead-letter stream under a new id.
	if err := in.admin.ReplayDLQ(ctx, dl.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the replayed event to be dead-lettered again", func() bool {
		list, _ := in.admin.DLQ(ctx, "probe")
		for _, d := range list {
			if d.RequestID == reqID && d.ID != dl.ID {
				return true
			}
		}
		return false
	})
	if err := in.admin.ReplayDLQ(ctx, dl.ID); err == nil {
		t.Errorf("replaying a removed dead letter succeeded")
	}
}

func TestAsyncInvocation(t *testing.T) {
	in, key := sharedServer(t)
	st, body, hdr := call(t, in.gateway, "POST", "/probe/echo", key, []byte("later"), "X-Aegis-Async", "true")
	if st != 202 {
		t.Fatalf("async: %d %s", st, body)
	}
	var acc struct {
		InvocationID string `json:"invocation_id"`
	}
	_ = json.Unmarshal(body, &acc)
	if acc.InvocationID == "" || hdr.Get("Location") == "" {
		t.Fatalf("no invocation id: %s", body)
	}
	var res struct {
		Status   string
		Response struct {
			Status int
			Body   []byte
		}
	}
	eventually(t, 10*time.Second, "the async result", func() bool {
		st, body, _ := call(t, in.gateway, "GET", "/_aegis/invocations/"+acc.InvocationID, key, nil)
		if st != 200 {
			t.Fatalf("result: %d %s", st, body)
		}
		_ = json.Unmarshal(body, &res)
		return res.Status == "done"
	})
	if res.Response.Status != 200 || string(res.Response.Body) != "later" {
		t.Errorf("async result %+v", res)
	}
	// Someone else's key cannot read it.
	other, err := in.admin.CreateKey(context.Background(), "async-other")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := call(t, in.gateway, "GET", "/_aegis/invocations/"+acc.InvocationID, other.Key, nil); st != 404 {
		t.Errorf("another key read the result: %d", st)
	}
}

func TestFunctionLogsCaptured(t *testing.T) {
	in, key := sharedServer(t)
	status, _, hdr := call(t, in.gateway, "POST", "/probe/log", key, `{"value":"marker-42"}`)
	if status != 200 {
		t.Fatal(status)
	}
	reqID := hdr.Get("X-Request-Id")
	var logged, printed bool
	eventually(t, 5*time.Second, "the function's log lines", func() bool {
		_ = in.admin.Logs(context.Background(), client.LogQuery{App: "probe", Function: "probe", Limit: 500}, func(r client.LogRecord) error {
			if r.RequestID == reqID && strings.Contains(r.Msg, "probe says marker-42") {
				logged = true
			}
			if r.RequestID == reqID && strings.Contains(r.Msg, "probe printed marker-42") {
				printed = true
			}
			return nil
		})
		return logged && printed
	})
}

func TestObjectTrigger(t *testing.T) {
	in, key := sharedServer(t)
	_, outside := probe(t, in.gateway, key, "probe", "obj-put", map[string]any{"key": "ok/unwatched.txt", "value": "x"})
	o, inside := probe(t, in.gateway, key, "probe", "obj-put", map[string]any{"key": "ok/watched/a.txt", "value": "x"})
	if !o.OK {
		t.Fatal(o.Error)
	}
	eventually(t, 10*time.Second, "the object trigger to fire", func() bool {
		o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": inside})
		return o.Value == "put:ok/watched/a.txt"
	})
	if o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": outside}); o.OK {
		t.Errorf("a put outside the trigger's prefix fired it: %+v", o)
	}
}

func TestScheduleTrigger(t *testing.T) {
	in, key := sharedServer(t)
	var first string
	eventually(t, 5*time.Second, "the schedule to fire", func() bool {
		o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": "last-tick"})
		first = o.Value
		return o.OK
	})
	eventually(t, 5*time.Second, "the schedule to fire again", func() bool {
		o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": "last-tick"})
		return o.OK && o.Value != first
	})

	// Each run starts a trace of its own, rooted at the schedule.
	code, out, errs := aegisCLI(t, in, "logs", "--app", "probe", "--function", "ticker", "--since", "1m", "-o", "json")
	if code != 0 {
		t.Fatalf("aegis logs: exit %d %s", code, errs)
	}
	traceID := ""
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var r struct {
			Msg     string `json:"msg"`
			TraceID string `json:"trace_id"`
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "invocation" && r.TraceID != "" {
			traceID = r.TraceID
		}
	}
	if traceID == "" {
		t.Fatalf("no traced invocation record of the ticker:\n%s", out)
	}
	tr := traceTree(t, in, traceID, 1)
	if len(tr.Children) != 1 || tr.Children[0].Function != "ticker" || tr.Children[0].Trigger != "schedule" {
		t.Errorf("a scheduled run's trace: %+v", tr)
	}
}

func TestLogsFollow(t *testing.T) {
	in, key := sharedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	seen := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- in.admin.Logs(ctx, client.LogQuery{App: "probe", Function: "probe", Follow: true, Limit: 1}, func(r client.LogRecord) error {
			seen <- r.RequestID
			return nil
		})
	}()
	// Records written after the follow began must arrive; keep invoking
	// until one of ours does, so the test does not depend on when the
	// server-side consumer started.
	sent := map[string]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_, _, hdr := call(t, in.gateway, "POST", "/probe/echo", key, []byte("follow me"))
			sent[hdr.Get("X-Request-Id")] = true
		case id := <-seen:
			if sent[id] {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("follow ended with %v", err)
				}
				return
			}
		case err := <-done:
			t.Fatalf("follow ended early: %v", err)
		case <-ctx.Done():
			t.Fatal("following the log never showed a new invocation")
		}
	}
}
