package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/bus"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/vault"
)

// outsider connects to the server's NATS as a process that can reach its
// port and holds its client key would, and writes straight into the event
// stream.
func outsider(t *testing.T, in *instance) *jetstream.Node {
	t.Helper()
	url := in.srv.NATSURL()
	if url == "" {
		t.Fatal("the test server's NATS has no port")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An outsider that got hold of the client key: the port lets nobody
	// else in (TestNATSPortsNeedCredentials).
	seed, err := jetstream.ReadSeedFile(natsKeyOf(in))
	if err != nil {
		t.Fatal(err)
	}
	n, err := jetstream.Open(ctx, jetstream.Config{URL: url, ClientSeed: seed})
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

// eventKey reads the server's event signing key, which a test uses to
// build events that verify but must still be refused for other reasons.
func eventKey(t *testing.T, in *instance) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(in.dataDir, "keys", "events.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// deadLetterOf finds the dead letter of app's function under reqID.
func deadLetterOf(t *testing.T, in *instance, app, reqID, function string) (client.DeadLetter, bool) {
	t.Helper()
	list, err := in.admin.DLQ(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		if d.RequestID == reqID && d.Function == function {
			return d, true
		}
	}
	return client.DeadLetter{}, false
}

// invoked reports whether app's fn has an invocation record under reqID.
func invoked(t *testing.T, in *instance, app, fn, reqID string) bool {
	t.Helper()
	found := false
	err := in.admin.Logs(context.Background(), client.LogQuery{App: app, Function: fn, Limit: 2000}, func(r client.LogRecord) error {
		found = found || r.RequestID == reqID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// signV1 is the version 1 event signature (docs/events.md): HMAC-SHA256
// over a label, subject, producer, request id, hop and data, each after
// its length as 8 bytes, big endian.
func signV1(key []byte, subject, producer, reqID string, hop uint64, data []byte) string {
	m := hmac.New(sha256.New, key)
	field := func(b []byte) {
		m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		m.Write(b)
	}
	field([]byte("aegis-event-v1"))
	field([]byte(subject))
	field([]byte(producer))
	field([]byte(reqID))
	field(binary.BigEndian.AppendUint64(nil, hop))
	field(data)
	return "v1=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sealPayload seals an event payload as the platform does, with what an
// insider holding the master key could reach: the vault's bucket on NATS.
func sealPayload(t *testing.T, nc *jetstream.Node, app, subject string, data []byte) []byte {
	t.Helper()
	ctx := context.Background()
	bucket, err := nc.Bucket(ctx, vault.Bucket, jetstream.BucketOptions{History: 1})
	if err != nil {
		t.Fatal(err)
	}
	kek, _, err := vault.LoadMasterKey(vault.MasterKeyOptions{ConfigDir: testConfigDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, vault.Config{Store: bucket, KMS: kek})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.SealData(ctx, app, bus.PayloadAD(subject), data)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestEventsWrittenStraightIntoNATSAreRejected(t *testing.T) {
	in, key := sharedServer(t)
	nc := outsider(t, in)
	signingKey := eventKey(t, in)
	ctx := context.Background()

	const topicSubject = "aegis.ev.probe.ok.topic" // listener's trigger
	const objectSubject = "aegis.obj.probe"        // watcher's trigger
	signed := func(producer string, hop int) func(subject, reqID string, data []byte) map[string]string {
		return func(subject, reqID string, data []byte) map[string]string {
			return bus.NewEnvelope(producer, reqID, hop).Headers(signingKey, subject, data)
		}
	}
	forged := make([]byte, 32)
	_, _ = rand.Read(forged)
	tests := []struct {
		name     string
		subject  string
		function string // the trigger's function
		data     string
		headers  func(subject, reqID string, data []byte) map[string]string
		// sealed: the payload is sealed with the app's data key, as the
		// platform stores every event's (a topic event's only).
		sealed bool
		reason string // "" means delivered
	}{
		{
			name: "unsigned", subject: topicSubject, function: "listener", data: `{"forged":1}`,
			headers: func(_, reqID string, _ []byte) map[string]string {
				return map[string]string{bus.HeaderRequestID: reqID, bus.HeaderProducer: "probe/probe@v1", bus.HeaderHop: "1"}
			},
			reason: "unsigned event",
		},
		{
			name: "made-up signature", subject: topicSubject, function: "listener", data: `{"forged":2}`,
			headers: func(_, reqID string, _ []byte) map[string]string {
				return map[string]string{bus.HeaderRequestID: reqID, bus.HeaderProducer: "probe/probe@v1", bus.HeaderHop: "1",
					bus.HeaderSignature: "v1=" + base64.RawURLEncoding.EncodeToString(forged)}
			},
			reason: "signature mismatch",
		},
		{
			name: "signed with another key", subject: topicSubject, function: "listener", data: `{"forged":3}`,
			headers: func(subject, reqID string, data []byte) map[string]string {
				return bus.NewEnvelope("probe/probe@v1", reqID, 1).Headers(forged, subject, data)
			},
			reason: "signature mismatch",
		},
		{
			name: "producer without the publish grant", subject: topicSubject, function: "listener", data: `{"forged":4}`,
			headers: signed("probe/open@v1", 1), reason: "producer not granted topic",
		},
		{
			name: "producer that does not exist", subject: topicSubject, function: "listener", data: `{"forged":5}`,
			headers: signed("probe/ghost@v1", 1), reason: "unknown producer",
		},
		{
			name: "beyond the hop limit", subject: topicSubject, function: "listener", data: `{"forged":6}`,
			// Its envelope names no path (it never went through one), so
			// the path is all ellipsis but the function it was meant for.
			headers: signed("probe/probe@v1", bus.DefaultHopLimit+1), reason: "hop limit exceeded: … → listener (17 hops)",
		},
		{
			name: "unsigned object event", subject: objectSubject, function: "watcher",
			data: `{"key":"ok/watched/forged.txt","operation":"put"}`,
			headers: func(_, reqID string, _ []byte) map[string]string {
				return map[string]string{bus.HeaderRequestID: reqID}
			},
			reason: "unsigned event",
		},
		{
			name: "object event from a producer without the write grant", subject: objectSubject, function: "watcher",
			data:    `{"key":"ok/watched/forged.txt","operation":"put"}`,
			headers: signed("probe/listener@v1", 1), reason: "producer not granted object key",
		},
		{
			// Signed as before event ids existed: it cannot be told from
			// its own copy, so it is dead-lettered, where a replay re-signs it.
			name: "signature version 1", subject: topicSubject, function: "listener", data: `{"forged":7}`,
			headers: func(subject, reqID string, data []byte) map[string]string {
				return map[string]string{bus.HeaderRequestID: reqID, bus.HeaderProducer: "probe/probe@v1", bus.HeaderHop: "1",
					bus.HeaderSignature: signV1(signingKey, subject, "probe/probe@v1", reqID, 1, data)}
			},
			reason: "event without id (signature v1)",
		},
		{
			// The signing key alone does not make an event: its payload
			// must be sealed with the app's data key, which needs the
			// master key.
			name: "signed by a granted producer, payload in the clear", subject: topicSubject, function: "listener", data: `{"signed":0}`,
			headers: signed("probe/probe@v1", 1), reason: "event payload does not open with the app's data key",
		},
		{
			name: "signed by a granted producer", subject: topicSubject, function: "listener", data: `{"signed":1}`,
			headers: signed("probe/probe@v1", bus.DefaultHopLimit), sealed: true,
		},
	}
	ids := make([]string, len(tests))
	for i, tc := range tests {
		ids[i] = telemetry.NewRequestID()
		data := []byte(tc.data)
		if tc.sealed {
			data = sealPayload(t, nc, "probe", tc.subject, data)
		}
		hdr := tc.headers(tc.subject, ids[i], data)
		if _, err := nc.Publish(ctx, tc.subject, data, hdr, hdr[bus.HeaderEventID]); err != nil {
			t.Fatalf("%s: publish: %v", tc.name, err)
		}
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqID := ids[i]
			if tc.reason == "" {
				eventually(t, 10*time.Second, "the signed event to be delivered", func() bool {
					o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": reqID})
					return o.OK && o.Value == tc.data
				})
				return
			}
			var dl client.DeadLetter
			eventually(t, 10*time.Second, "the event in the dead-letter stream", func() bool {
				var ok bool
				dl, ok = deadLetterOf(t, in, "probe", reqID, tc.function)
				return ok
			})
			if dl.Error != tc.reason || dl.Attempts != 1 {
				t.Errorf("dead letter: %+v, want error %q after 1 attempt", dl, tc.reason)
			}
			// It was dead-lettered instead of invoked, so nothing ran.
			if o, _ := probe(t, in.gateway, key, "probe", "kv-get", map[string]any{"table": "events", "key": reqID}); o.OK {
				t.Errorf("the function ran with the event: %+v", o)
			}
			if invoked(t, in, "probe", tc.function, reqID) {
				t.Errorf("%s has an invocation record for the event", tc.function)
			}
			if strings.HasPrefix(tc.reason, "hop limit exceeded") {
				// A stopped chain raises its alert instead (bus/loop.go).
				lines := in.logs.Lines(`"event loop stopped at the hop limit"`, reqID)
				if len(lines) != 1 || lines[0]["security"] != true || lines[0]["alert"] != true || lines[0]["path"] != "… → listener (17 hops)" {
					t.Errorf("want one alert for the stopped chain, got %v", lines)
				}
				return
			}
			lines := in.logs.Lines(`"event rejected"`, reqID)
			if len(lines) == 0 {
				t.Fatalf("no security log line for %s", reqID)
			}
			l := lines[0]
			if l["security"] != true || l["level"] != "WARN" || l["reason"] != tc.reason || l["app"] != "probe" ||
				l["function"] != tc.function || l["subject"] != tc.subject || l["request_id"] != reqID {
				t.Errorf("security log line: %v", l)
			}
		})
	}
}

func TestEventLoopStopsAtHopLimit(t *testing.T) {
	in, key := sharedServer(t)
	ctx := context.Background()
	// probe starts the chain on loop.ping; ping answers on loop.pong, pong
	// on loop.ping, and so on, until the platform stops it.
	o, reqID := probe(t, in.gateway, key, "probe", "publish", map[string]any{"topic": "loop.ping", "value": "ball"})
	if !o.OK {
		t.Fatalf("publish: %s", o.Error)
	}
	var dl client.DeadLetter
	eventually(t, 20*time.Second, "the loop to be stopped", func() bool {
		var ok bool
		dl, ok = deadLetterOf(t, in, "probe", reqID, "ping") // hop 17 is pong's answer, on loop.ping
		return ok
	})
	// The dead letter names the path of the loop: probe started it, ping
	// and pong answered each other until hop 17, meant for ping.
	wantPath := "probe → ping → pong → ping → pong → ping → pong → ping → pong → ping → pong → ping → pong → ping → pong → ping → pong → ping (17 hops)"
	if dl.Error != "hop limit exceeded: "+wantPath || dl.Topic != "loop.ping" {
		t.Errorf("dead letter: %+v\nwant error %q", dl, "hop limit exceeded: "+wantPath)
	}
	alerts := func() []map[string]any { return in.logs.Lines(`"event loop stopped at the hop limit"`, reqID) }
	if lines := alerts(); len(lines) != 1 || lines[0]["security"] != true || lines[0]["alert"] != true ||
		lines[0]["path"] != wantPath || lines[0]["level"] != "ERROR" || !strings.HasPrefix(lines[0]["origin"].(string), "key:") {
		t.Errorf("want one alert naming the path and the key that started the chain, got %v", lines)
	}

	// Every hop up to the limit ran once: 16 log lines "loop hop n", n = 1..16.
	hops := func() map[string]int {
		seen := map[string]int{}
		for _, fn := range []string{"ping", "pong"} {
			err := in.admin.Logs(ctx, client.LogQuery{App: "probe", Function: fn, Limit: 2000}, func(r client.LogRecord) error {
				if r.RequestID == reqID && strings.HasPrefix(r.Msg, "loop hop ") {
					seen[strings.TrimPrefix(r.Msg, "loop hop ")]++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return seen
	}
	var seen map[string]int
	eventually(t, 5*time.Second, "the log lines of all 16 hops", func() bool {
		seen = hops()
		return len(seen) >= bus.DefaultHopLimit
	})
	for n := 1; n <= bus.DefaultHopLimit; n++ {
		if c := seen[strconv.Itoa(n)]; c != 1 {
			t.Errorf("hop %d ran %d times", n, c)
		}
	}
	if len(seen) != bus.DefaultHopLimit {
		t.Errorf("hops run: %v, want 1..%d", seen, bus.DefaultHopLimit)
	}

	// A replayed dead letter keeps its signed envelope: it verifies again and
	// is stopped again by the hop limit, not refused as forged.
	if err := in.admin.ReplayDLQ(ctx, dl.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replayed event to come back", func() bool {
		list, _ := in.admin.DLQ(ctx, "probe")
		for _, d := range list {
			if d.RequestID == reqID && d.ID != dl.ID {
				if d.Error != "hop limit exceeded: "+wantPath {
					t.Fatalf("replayed dead letter: %+v", d)
				}
				return true
			}
		}
		return false
	})
	// The same chain stopped again raises no second alert.
	if n := len(alerts()); n != 1 {
		t.Errorf("%d alerts for one chain, want 1", n)
	}
}
