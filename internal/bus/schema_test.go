package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/schema"
)

// An event that violates its trigger's schema is dead-lettered at once
// with a reason naming the field, counted and logged as a security event;
// one that matches, or a trigger without a schema, goes on.
func TestSchemaViolationIsDeadLetteredAtOnce(t *testing.T) {
	ctx := context.Background()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close(context.Background()) })
	var logs bytes.Buffer
	m := metrics.New()
	b, err := Open(ctx, Config{Node: node, SigningKey: bytes.Repeat([]byte{1}, KeySize), Metrics: m,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)

	s, err := schema.Compile(map[string][]byte{
		"placed.json":  []byte(`{"type":"object","required":["order"],"properties":{"order":{"type":"integer"}}}`),
		"receipt.json": []byte(`{"type":"object","properties":{"key":{"pattern":"^receipts/[0-9]+$"}}}`),
	}, "placed.json", "receipt.json")
	if err != nil {
		t.Fatal(err)
	}
	fn := &registry.Function{App: "shop", Schemas: map[string]*schema.Schema{
		"event:order.placed":   s["placed.json"],
		"object:receipts/|put": s["receipt.json"],
	}}
	ev := desired{durable: "ev_shop_audit_x", app: "shop", function: "audit", trigger: "event:order.placed"}
	ob := desired{durable: "ob_shop_audit_x", app: "shop", function: "audit", trigger: "object:receipts/|put", object: &objectFilter{prefix: "receipts/"}}
	msg := func(seq uint64, subject, data string) *jetstream.Message {
		return &jetstream.Message{Subject: subject, Data: []byte(data), Seq: seq, NumDelivered: 1,
			Headers: map[string]string{HeaderRequestID: "0123456789abcdef0123456789abcdef"}}
	}

	check := func(d desired, m *jetstream.Message, fn *registry.Function) bool {
		return b.checkSchema(ctx, d, m, m.Data, fn)
	}
	if !check(ev, msg(1, "aegis.ev.shop.order.placed", `{"order":7}`), fn) {
		t.Error("a valid event was refused")
	}
	if !check(ev, msg(2, "aegis.ev.shop.order.placed", `not even JSON`), &registry.Function{App: "shop"}) {
		t.Error("a trigger without a schema refused an event")
	}
	if check(ev, msg(3, "aegis.ev.shop.order.placed", `{"order":"hunter2-secret"}`), fn) {
		t.Fatal("an event violating the schema went on")
	}
	if check(ev, msg(4, "aegis.ev.shop.order.placed", `{"order":`), fn) {
		t.Fatal("an event that is not JSON went on")
	}
	if check(ob, msg(5, "aegis.obj.shop", `{"key":"receipts/x","operation":"put"}`), fn) {
		t.Fatal("an object event violating the schema went on")
	}

	dls, err := b.DeadLetters(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"event does not match schema: event.order: type: want integer",
		"event is not valid JSON",
		"object event does not match schema: object.key: pattern: does not match ^receipts/[0-9]+$",
	}
	if len(dls) != len(want) {
		t.Fatalf("dead letters: %+v", dls)
	}
	for i, dl := range dls {
		if dl.Error != want[i] || dl.Attempts != 1 || dl.Function != "audit" || dl.RequestID != "0123456789abcdef0123456789abcdef" {
			t.Errorf("dead letter %d: %+v, want error %q", i, dl, want[i])
		}
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("the log carries the payload: %s", logs.String())
	}
	var rejected int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "event rejected" {
			continue
		}
		rejected++
		if rec["security"] != true || rec["app"] != "shop" || rec["function"] != "audit" || rec["request_id"] != "0123456789abcdef0123456789abcdef" {
			t.Errorf("security line: %v", rec)
		}
	}
	if rejected != 3 {
		t.Errorf("%d security lines, want 3", rejected)
	}
	if n := testutil.CollectAndCount(m.Registry(), metrics.SchemaViolationsName); n != 2 {
		t.Errorf("%d counter series, want 2 (event, object)", n)
	}
}
