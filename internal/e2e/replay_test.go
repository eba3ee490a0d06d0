package e2e

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// runs counts the invocation records of app's fn under reqID.
func runs(t *testing.T, in *instance, app, fn, reqID string) int {
	t.Helper()
	n := 0
	err := in.admin.Logs(context.Background(), client.LogQuery{App: app, Function: fn, Limit: 5000}, func(r client.LogRecord) error {
		if r.RequestID == reqID && (r.Msg == "invocation" || r.Msg == "invocation failed") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// streamMessage finds the event of the chain reqID on subject as anyone
// reading the stream would.
func streamMessage(t *testing.T, nc *jetstream.Node, subject, reqID string) *jetstream.Message {
	t.Helper()
	var found *jetstream.Message
	eventually(t, 5*time.Second, "the event in the stream", func() bool {
		msgs, err := nc.StreamMessages(context.Background(), bus.EventStream, subject, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Headers[bus.HeaderRequestID] == reqID {
				found = m
			}
		}
		return found != nil
	})
	return found
}

// TestReplayedEventRunsOnce: a genuine signed event read off NATS and
// published again runs its consumer once, whichever way the copy is sent.
func TestReplayedEventRunsOnce(t *testing.T) {
	in, key := sharedServer(t)
	nc := outsider(t, in)
	ctx := context.Background()
	const subject = "aegis.ev.probe.ok.topic"

	o, reqID := probe(t, in.gateway, key, "probe", "publish", map[string]any{"topic": "ok.topic", "value": `{"once":true}`})
	if !o.OK {
		t.Fatalf("publish: %s", o.Error)
	}
	eventually(t, 10*time.Second, "the listener's one run", func() bool { return runs(t, in, "probe", "listener", reqID) == 1 })
	orig := streamMessage(t, nc, subject, reqID)
	eventID := orig.Headers[bus.HeaderEventID]
	if orig.Headers[jetstream.HeaderMsgID] != eventID || eventID == "" {
		t.Fatalf("event stored with message id %q, event id %q", orig.Headers[jetstream.HeaderMsgID], eventID)
	}
	refusal := func(reason string) {
		t.Helper()
		eventually(t, 10*time.Second, "the refusal "+reason, func() bool {
			return len(in.logs.Lines(`"event replay refused"`, reqID, `"reason":"`+reason+`"`, `"security":true`, `"function":"listener"`)) > 0
		})
	}

	// Unchanged, message id included: JetStream keeps one copy.
	seq, err := nc.Publish(ctx, subject, orig.Data, orig.Headers, "")
	if err != nil {
		t.Fatal(err)
	}
	if seq != orig.Seq {
		t.Errorf("the unchanged copy was stored as %d, the original is %d", seq, orig.Seq)
	}

	// Under another message id, or none: stored, then refused.
	for _, msgID := range []string{"", telemetry.NewRequestID()} {
		hdr := maps.Clone(orig.Headers)
		delete(hdr, jetstream.HeaderMsgID)
		if _, err := nc.Publish(ctx, subject, orig.Data, hdr, msgID); err != nil {
			t.Fatal(err)
		}
	}
	refusal("message id is not the event id")

	// With de-duplication gone (someone with NATS access shortened the
	// window), the copy is stored under its own message id: the trigger's
	// replay record refuses it.
	noDedupe := jetstream.StreamConfig{Name: bus.EventStream, Subjects: []string{"aegis.ev.>", "aegis.obj.>"},
		MaxAge: 7 * 24 * time.Hour, Duplicates: time.Second,
		// The bus's bounds stay (JetStream never turns message TTLs off).
		MaxBytes: bus.DefaultStreamBytes, DiscardNew: true, AllowMsgTTL: true}
	if err := nc.EnsureStream(ctx, noDedupe); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		noDedupe.Duplicates = bus.DedupeWindow
		if err := nc.EnsureStream(context.Background(), noDedupe); err != nil {
			t.Errorf("restore the de-duplication window: %v", err)
		}
	})
	time.Sleep(1500 * time.Millisecond)
	copySeq, err := nc.Publish(ctx, subject, orig.Data, orig.Headers, "")
	if err != nil {
		t.Fatal(err)
	}
	if copySeq == orig.Seq {
		t.Fatal("the copy was still de-duplicated; the test no longer reaches the replay record")
	}
	refusal("event id already delivered")

	// A genuine event signed long ago and published now is stale.
	stale := bus.NewEnvelope("probe/probe@v1", reqID, 1)
	stale.Time = stale.Time.Add(-10 * time.Minute)
	data := []byte(`{"stale":true}`)
	if _, err := nc.Publish(ctx, subject, data, stale.Headers(eventKey(t, in), subject, data), stale.ID); err != nil {
		t.Fatal(err)
	}
	refusal("stale event")

	// Every copy has been refused by now; none ran.
	if n := runs(t, in, "probe", "listener", reqID); n != 1 {
		t.Errorf("the listener ran %d times, want once", n)
	}
	if _, ok := deadLetterOf(t, in, "probe", reqID, "listener"); ok {
		t.Errorf("a refused copy was dead-lettered")
	}
}

// TestDeadLetterReplayDeliversOnce: `aegis dlq replay` re-signs a dead
// letter under a new id and names who replayed it; two replays racing
// deliver it once; a dead letter that never verified is not replayed.
func TestDeadLetterReplayDeliversOnce(t *testing.T) {
	in, key := sharedServer(t)
	ctx := context.Background()
	o, reqID := probe(t, in.gateway, key, "probe", "publish", map[string]any{"topic": "jobs.fail", "value": `{"job":"once"}`})
	if !o.OK {
		t.Fatalf("publish: %s", o.Error)
	}
	var dl client.DeadLetter
	eventually(t, 15*time.Second, "the dead letter", func() bool {
		var ok bool
		dl, ok = deadLetterOf(t, in, "probe", reqID, "failing")
		return ok
	})
	eventually(t, 5*time.Second, "both attempts", func() bool { return runs(t, in, "probe", "failing", reqID) == 2 })

	// Two operators replay it at once: one event, which fails its two
	// attempts again.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.admin.ReplayDLQ(ctx, dl.ID)
		}()
	}
	wg.Wait()
	if errs[0] != nil && errs[1] != nil {
		t.Fatalf("both replays failed: %v, %v", errs[0], errs[1])
	}
	var again client.DeadLetter
	eventually(t, 15*time.Second, "the replayed event back in the dead-letter stream", func() bool {
		list, err := in.admin.DLQ(ctx, "probe")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.RequestID == reqID && d.ID != dl.ID {
				again = d
				return true
			}
		}
		return false
	})
	if again.Attempts != 2 {
		t.Errorf("replayed dead letter after %d attempts, want 2", again.Attempts)
	}
	time.Sleep(500 * time.Millisecond) // a second delivery would have started by now
	if n := runs(t, in, "probe", "failing", reqID); n != 4 {
		t.Errorf("the function ran %d times in all, want 2 + 2 (one replay)", n)
	}
	replayed := in.logs.Lines(`"dead letter replayed"`, reqID, `"replayed_by":"root"`)
	if len(replayed) == 0 {
		t.Fatalf("no log line names who replayed the dead letter")
	}
	if replayed[0]["event_id"] == replayed[0]["replaced_event_id"] {
		t.Errorf("the replay kept the event id: %v", replayed[0])
	}
	if l := in.logs.Lines(`"replayed event delivered"`, reqID, `"replayed_by":"root"`, `"function":"failing"`); len(l) != 1 {
		t.Errorf("deliveries of the replayed event naming its replayer: %d, want 1", len(l))
	}

	// A dead letter that never verified (written straight into NATS) is
	// not signed by a replay.
	nc := outsider(t, in)
	forgedID := telemetry.NewRequestID()
	data := []byte(`{"forged":"replay"}`)
	if _, err := nc.Publish(ctx, "aegis.ev.probe.ok.topic", data, map[string]string{bus.HeaderRequestID: forgedID, bus.HeaderProducer: "probe/probe@v1", bus.HeaderHop: "1"}, ""); err != nil {
		t.Fatal(err)
	}
	var forged client.DeadLetter
	eventually(t, 10*time.Second, "the unsigned event dead-lettered", func() bool {
		var ok bool
		forged, ok = deadLetterOf(t, in, "probe", forgedID, "listener")
		return ok
	})
	err := in.admin.ReplayDLQ(ctx, forged.ID)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Fatalf("replaying a forged dead letter: %v, want 409", err)
	}
	if _, ok := deadLetterOf(t, in, "probe", forgedID, "listener"); !ok {
		t.Errorf("the refused dead letter was removed")
	}
}
