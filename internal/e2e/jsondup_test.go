package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// dupSecret is what the ambiguous member carries; no answer, dead letter
// or log line may repeat it.
const dupSecret = "dup-S3cret-Member-Value"

// signedEventHeaders signs an event as the platform would, for a test that
// publishes it straight on NATS: hop 1, a fresh event id, the server's key.
// The event is to be published once, under its event id.
func signedEventHeaders(t *testing.T, in *instance, producer, reqID, subject string, data []byte) map[string]string {
	t.Helper()
	return bus.NewEnvelope(producer, reqID, 1).Headers(eventKey(t, in), subject, data)
}

// TestJSONDuplicateMembers: a JSON text that parsers read differently (a
// member name given twice, invalid UTF-8) does not pass a schema, whichever
// copy of the member the schema would have seen: a body answers 400, an
// event and an object event are dead-lettered, and the function never runs.
func TestJSONDuplicateMembers(t *testing.T) {
	in, key := sharedServer(t)
	deploySchemaApp(t, in)

	t.Run("body", func(t *testing.T) {
		const route = "POST /sch/entries/{op}"
		tests := []struct{ name, body, want string }{
			{"duplicate at the top", `{"value":{"$ne":"` + dupSecret + `"},"value":"ok"}`,
				"request does not match schema: body.value: duplicate member name"},
			{"duplicate after unescaping", `{"valu\u0065":"` + dupSecret + `","value":"ok"}`,
				"request does not match schema: body.value: duplicate member name"},
			{"nested duplicate", `{"value":"ok","tags":[{"name":"a"},{"name":"` + dupSecret + `","name":"b"}]}`,
				"request does not match schema: body.tags[1].name: duplicate member name"},
			{"invalid UTF-8", "{\"value\":\"ok\xff" + dupSecret + "\"}",
				"request does not match schema: body.value: invalid UTF-8"},
		}
		var refusedIDs []string
		for _, tt := range tests {
			before := schemaViolations(t, in, "entries", route, "body")
			st, body, hdr := call(t, in.gateway, "POST", "/sch/entries/echo", key, tt.body)
			msg, id := errorBody(t, body)
			if st != 400 || msg != tt.want {
				t.Errorf("%s: got %d %q, want 400 %q", tt.name, st, msg, tt.want)
			}
			if strings.Contains(string(body), dupSecret) {
				t.Errorf("%s: answer echoes the member's value: %s", tt.name, body)
			}
			if id != hdr.Get("X-Request-Id") {
				t.Errorf("%s: request id %q, header %q", tt.name, id, hdr.Get("X-Request-Id"))
			}
			if got := schemaViolations(t, in, "entries", route, "body") - before; got != 1 {
				t.Errorf("%s: body violations counted %v, want 1", tt.name, got)
			}
			if lines := in.logs.Lines("request refused by schema", id); len(lines) != 1 || lines[0]["security"] != true || lines[0]["reason"] != tt.want {
				t.Errorf("%s: security log line: %v", tt.name, lines)
			}
			refusedIDs = append(refusedIDs, id)
		}

		// A valid body still reaches the function. Once its run is
		// recorded, the refused requests would have been too, had they run.
		const valid = `{"value":"ok","tags":[{"name":"a"},{"name":"b"}]}`
		st, body, hdr := call(t, in.gateway, "POST", "/sch/entries/echo", key, valid)
		if st != 200 || string(body) != valid {
			t.Fatalf("valid body: got %d %s", st, body)
		}
		eventually(t, 10*time.Second, "the valid request's invocation record", func() bool {
			return invoked(t, in, schemaApp, "entries", hdr.Get("X-Request-Id"))
		})
		for _, id := range refusedIDs {
			if invoked(t, in, schemaApp, "entries", id) {
				t.Errorf("the function ran for refused request %s", id)
			}
		}
		if strings.Contains(in.logs.String(), dupSecret) {
			t.Error("the log carries the member's value")
		}
	})

	// A function publishes a payload whose "id" is given twice; the
	// consumer's schema wants an integer, which the last copy is.
	t.Run("event", func(t *testing.T) {
		before := schemaViolations(t, in, "consumer", "event:sch.entry", "event")
		o, reqID := probeAt(t, in, key, "publish", map[string]any{"topic": "sch.entry", "value": `{"id":"` + dupSecret + `","id":7}`})
		if !o.OK {
			t.Fatalf("publish: %s", o.Error)
		}
		const want = "event does not match schema: event.id: duplicate member name"
		var dl client.DeadLetter
		eventually(t, 15*time.Second, "the ambiguous event in the dead-letter stream", func() bool {
			var ok bool
			dl, ok = deadLetterOf(t, in, schemaApp, reqID, "consumer")
			return ok
		})
		if dl.Topic != "sch.entry" || dl.Attempts != 1 || dl.Error != want {
			t.Errorf("dead letter: %+v, want error %q after 1 attempt", dl, want)
		}
		if lines := in.logs.Lines(`"event rejected"`, reqID); len(lines) != 1 || lines[0]["security"] != true || lines[0]["reason"] != want {
			t.Errorf("security log line: %v", lines)
		}
		if got := schemaViolations(t, in, "consumer", "event:sch.entry", "event") - before; got < 1 {
			t.Errorf("event violations counted %v", got)
		}
		if o, _ := probeAt(t, in, key, "kv-get", map[string]any{"table": "events", "key": reqID}); o.OK {
			t.Errorf("the consumer stored the event: %+v", o)
		}
		if invoked(t, in, schemaApp, "consumer", reqID) {
			t.Error("the consumer ran with the ambiguous event")
		}
		if strings.Contains(in.logs.String(), dupSecret) {
			t.Error("the log carries the member's value")
		}
	})

	// An object event document is built by the platform; one written
	// straight on NATS and signed with the key still meets the schema. The
	// last "key" is the one the schema's pattern accepts.
	t.Run("object event", func(t *testing.T) {
		nc := outsider(t, in)
		const subject = "aegis.obj." + schemaApp
		before := schemaViolations(t, in, "watcher", "object:sch/|put", "object")
		reqID := telemetry.NewRequestID() // fresh each run: an event is accepted once
		data := []byte(`{"key":"sch/bad/` + dupSecret + `","key":"sch/ok/dup","operation":"put"}`)
		hdr := signedEventHeaders(t, in, schemaApp+"/entries@v1", reqID, subject, data)
		if _, err := nc.Publish(context.Background(), subject, data, hdr, hdr[bus.HeaderEventID]); err != nil {
			t.Fatalf("publish: %v", err)
		}
		const want = "object event does not match schema: object.key: duplicate member name"
		var dl client.DeadLetter
		eventually(t, 15*time.Second, "the ambiguous object event in the dead-letter stream", func() bool {
			var ok bool
			dl, ok = deadLetterOf(t, in, schemaApp, reqID, "watcher")
			return ok
		})
		if dl.Attempts != 1 || dl.Error != want {
			t.Errorf("dead letter: %+v, want error %q after 1 attempt", dl, want)
		}
		if lines := in.logs.Lines(`"event rejected"`, reqID); len(lines) != 1 || lines[0]["security"] != true || lines[0]["reason"] != want {
			t.Errorf("security log line: %v", lines)
		}
		if got := schemaViolations(t, in, "watcher", "object:sch/|put", "object") - before; got < 1 {
			t.Errorf("object violations counted %v", got)
		}
		if o, _ := probeAt(t, in, key, "kv-get", map[string]any{"table": "events", "key": reqID}); o.OK {
			t.Errorf("the watcher stored the event: %+v", o)
		}
		if invoked(t, in, schemaApp, "watcher", reqID) {
			t.Error("the watcher ran with the ambiguous object event")
		}
		if strings.Contains(in.logs.String(), dupSecret) {
			t.Error("the log carries the member's value")
		}
	})
}
