package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// memModules is an in-memory module store for deploys in tests; state is
// a memkv.Store.
type memModules struct {
	mu         sync.Mutex
	m          map[string][]byte
	unreadable bool // every Get fails as an unavailable store does
}

func (s *memModules) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unreadable {
		return nil, fmt.Errorf("get object %s: %w", key, aegis.ErrUnavailable)
	}
	v, ok := s.m[key]
	if !ok {
		return nil, aegis.ErrNotFound
	}
	return v, nil
}

func (s *memModules) setUnreadable(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreadable = v
}

func (s *memModules) Has(_ context.Context, key string) (bool, error) {
	_, err := s.Get(context.Background(), key)
	return err == nil, nil
}

func (s *memModules) Put(_ context.Context, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = data
	return nil
}

// emptyCommand is the smallest module the sandbox runs: it exports _start,
// which does nothing, and its memory.
var emptyCommand = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one func of type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, 1 page
	0x07, 0x13, 0x02, // export section: two exports
	0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // _start = func 0
	0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, // memory = mem 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
}

type testRegistry struct {
	*Registry
	state   *memkv.Store
	modules *memModules
	engine  *sandbox.Engine
	sum     string
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	ctx := context.Background()
	engine, err := sandbox.New(ctx, sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close(ctx) })
	tr := &testRegistry{state: memkv.New(), modules: &memModules{m: map[string][]byte{}}, engine: engine}
	tr.Registry = tr.reopen(t)
	h := sha256.Sum256(emptyCommand)
	tr.sum = hex.EncodeToString(h[:])
	if err := tr.PutModule(ctx, tr.sum, emptyCommand); err != nil {
		t.Fatal(err)
	}
	return tr
}

// reopen is a new registry on the same stores, as after a restart.
func (tr *testRegistry) reopen(t *testing.T) *Registry {
	r := New(Config{State: tr.state, Modules: tr.modules, Engine: tr.engine})
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func (tr *testRegistry) deploy(text string, schemas map[string]string) (*App, error) {
	app, _, err := tr.Deploy(context.Background(), DeployRequest{
		App: "shop", Manifest: []byte(text), Modules: map[string]string{"orders": tr.sum, "audit": tr.sum}, Schemas: schemas,
	})
	return app, err
}

const schemaApp = `app: shop
functions:
  orders:
    source: ./orders.wasm
    triggers:
      - http: { method: POST, path: "/orders/{id}", schema: { body: schemas/order.json, params: schemas/id.json } }
      - http: { method: PUT, path: /csv, content_types: [text/csv] }
      - http: { method: GET, path: /plain }
  audit:
    source: ./audit.wasm
    triggers:
      - event: { topic: order.placed, schema: schemas/placed.json }
      - object: { prefix: receipts/, schema: schemas/receipt.json }
`

func schemaFiles() map[string]string {
	return map[string]string{
		"schemas/order.json":   `{"type":"object","required":["item"],"properties":{"item":{"$ref":"common.json#/$defs/item"}}}`,
		"schemas/common.json":  `{"$defs":{"item":{"type":"string","maxLength":10}}}`,
		"schemas/id.json":      `{"type":"object","properties":{"id":{"pattern":"^[0-9]+$"}}}`,
		"schemas/placed.json":  `{"type":"object","required":["order"]}`,
		"schemas/receipt.json": `{"type":"object","properties":{"key":{"pattern":"^receipts/[0-9]+$"}}}`,
		"schemas/unused.json":  `{"this file": "is not referenced"}`,
	}
}

func TestDeployCompilesAndAttachesSchemas(t *testing.T) {
	tr := newTestRegistry(t)
	app, err := tr.deploy(schemaApp, schemaFiles())
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	checkSchemasAttached(t, tr.Snapshot(), app)

	// The version record keeps the files the schemas need, not the extra.
	var ver versionRecord
	if err := tr.getJSON(context.Background(), versionKey("shop", 1), &ver); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range ver.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "schemas/common.json,schemas/id.json,schemas/order.json,schemas/placed.json,schemas/receipt.json" {
		t.Errorf("stored schema files: %s", got)
	}

	// A version without schemas, then a rollback: the first version's
	// schemas are compiled again from its record.
	plain := `app: shop
functions:
  orders:
    source: ./orders.wasm
    triggers:
      - http: { method: POST, path: "/orders/{id}" }
  audit:
    source: ./audit.wasm
    triggers:
      - event: { topic: order.placed }
`
	if _, err := tr.deploy(plain, nil); err != nil {
		t.Fatal(err)
	}
	rt, _, _ := tr.Snapshot().Routes.Match("POST", "/orders/1")
	if rt == nil || rt.Schema != nil {
		t.Fatalf("v2 route: %+v", rt)
	}
	app, _, err = tr.Rollback(context.Background(), "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	checkSchemasAttached(t, tr.Snapshot(), app)

	// A restart restores them too.
	r2 := tr.reopen(t)
	if err := r2.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkSchemasAttached(t, r2.Snapshot(), r2.Snapshot().Apps["shop"])
}

func checkSchemasAttached(t *testing.T, snap *Snapshot, app *App) {
	t.Helper()
	rt, params, err := snap.Routes.Match("POST", "/orders/12")
	if err != nil || rt.Schema == nil {
		t.Fatalf("route: %v, schema %v", err, rt)
	}
	if app.RequestCheck("orders", 0) != rt.Schema {
		t.Error("App.RequestCheck and the route disagree")
	}
	if err := rt.Schema.Check("application/json", nil, params, []byte(`{"item":"pen"}`)); err != nil {
		t.Errorf("valid order refused: %v", err)
	}
	err = rt.Schema.Check("application/json", nil, params, []byte(`{"item":"far too long an item"}`))
	if err == nil || err.Error() != "request does not match schema: body.item: maxLength: want at most 10 characters" {
		t.Errorf("long item: %v", err)
	}
	if err := rt.Schema.Check("application/json", nil, map[string]string{"id": "x"}, []byte(`{"item":"pen"}`)); err == nil {
		t.Error("bad id accepted")
	}
	if err := rt.Schema.Check("text/plain", nil, params, []byte(`{"item":"pen"}`)); !errors.Is(err, schema.ErrContentType) {
		t.Errorf("text/plain: %v", err)
	}
	csv, _, _ := snap.Routes.Match("PUT", "/csv")
	if csv.Schema == nil || csv.Schema.Check("application/json", nil, nil, []byte("{}")) == nil {
		t.Error("content_types alone are not checked")
	}
	if plain, _, _ := snap.Routes.Match("GET", "/plain"); plain.Schema != nil {
		t.Error("a route with nothing to check has a check")
	}
	audit := app.Functions["audit"]
	spec := audit.Spec.Triggers
	ev := audit.Schemas[EventTriggerKey(spec[0].Event)]
	ob := audit.Schemas[ObjectTriggerKey(spec[1].Object)]
	if ev == nil || ob == nil || len(audit.Schemas) != 2 {
		t.Fatalf("trigger schemas: %v", audit.Schemas)
	}
	if err := ev.ValidateJSON(schema.KindEvent, []byte(`{}`)); err == nil || err.Error() != "event does not match schema: event.order: required" {
		t.Errorf("event: %v", err)
	}
	if err := ob.ValidateJSON(schema.KindObject, []byte(`{"key":"receipts/x","operation":"put"}`)); err == nil {
		t.Error("object event accepted")
	}
	if len(app.Functions["orders"].Schemas) != 0 {
		t.Error("orders has trigger schemas")
	}
}

func TestDeployRefusesMissingAndBadSchemas(t *testing.T) {
	tr := newTestRegistry(t)
	if _, err := tr.deploy(schemaApp, schemaFiles()); err != nil {
		t.Fatal(err)
	}
	missing := schemaFiles()
	delete(missing, "schemas/placed.json")
	badSchema := schemaFiles()
	badSchema["schemas/order.json"] = `{"type": "objekt"}`
	badJSON := schemaFiles()
	badJSON["schemas/receipt.json"] = `{"type": `
	badRef := schemaFiles()
	delete(badRef, "schemas/common.json")
	netRef := schemaFiles()
	netRef["schemas/id.json"] = `{"$ref": "https://schemas.example.com/id.json"}`
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"missing file", missing, []string{"aegis.yaml:12: functions.audit.triggers[0].event.schema", "schemas/placed.json", "not sent with the deploy"}},
		{"no files at all", nil, []string{"functions.audit.triggers[0].event.schema", "schemas/placed.json"}},
		{"not a schema", badSchema, []string{"aegis.yaml:6: functions.orders.triggers[0].http.schema.body", "schemas/order.json", "not a valid schema"}},
		{"not JSON", badJSON, []string{"aegis.yaml:13: functions.audit.triggers[1].object.schema", "schemas/receipt.json", "not valid JSON"}},
		{"$ref to a file not sent", badRef, []string{"functions.orders.triggers[0].http.schema.body", "schemas/common.json"}},
		{"$ref to the network", netRef, []string{"functions.orders.triggers[0].http.schema.params", "https://schemas.example.com/id.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tr.deploy(schemaApp, tt.files)
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Fatalf("deploy: %v, want ErrInvalidArgument", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			// The active version keeps serving, with its schemas.
			if a := tr.Snapshot().Apps["shop"]; a == nil || a.Version != 1 {
				t.Fatalf("active version changed: %+v", a)
			}
			var rec appRecord
			if err := tr.getJSON(context.Background(), appKey("shop"), &rec); err != nil || rec.Latest != 1 {
				t.Errorf("a refused deploy was recorded: %+v %v", rec, err)
			}
		})
	}
}

// The stored record is plain JSON: schemas travel as text.
func TestVersionRecordKeepsSchemaText(t *testing.T) {
	b, err := json.Marshal(versionRecord{Schemas: map[string]string{"a.json": `{"type":"string"}`}})
	if err != nil || !strings.Contains(string(b), `"schemas":{"a.json":"{\"type\":\"string\"}"}`) {
		t.Errorf("record: %s %v", b, err)
	}
	b, _ = json.Marshal(versionRecord{})
	if strings.Contains(string(b), "schemas") {
		t.Errorf("empty schemas are stored: %s", b)
	}
}
