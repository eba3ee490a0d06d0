package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const schemaApp = "schemacheck"

// deploySchemaApp copies testdata/schema next to a freshly built probe.wasm
// and deploys it with the CLI, which reads the schema files (and the one
// they reach by $ref) and sends them with the deploy. It returns the copy's
// directory.
func deploySchemaApp(t *testing.T, in *instance) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("testdata/schema", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/schema", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe.wasm"), probeModule(t), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := aegisCLI(t, in, "deploy", "-f", filepath.Join(dir, "aegis.yaml"))
	if code != 0 {
		t.Fatalf("aegis deploy: exit %d\n%s\n%s", code, out, errs)
	}
	return dir
}

// schemaViolations reads the violation counter the way a monitoring
// system would: GET /metrics on the admin listener with an admin token.
func schemaViolations(t *testing.T, in *instance, function, trigger, kind string) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", in.srv.AdminURL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+in.srv.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for _, m := range mfs[metrics.SchemaViolationsName].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["app"] == schemaApp && l["function"] == function && l["trigger"] == trigger && l["kind"] == kind {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// The secret is what clients submit in failing fields; no answer, dead
// letter or log line may carry it.
const schemaSecret = "s3cr3t-Payload-Value"

func TestSchemaValidation(t *testing.T) {
	in, key := sharedServer(t)
	dir := deploySchemaApp(t, in)
	ctx := context.Background()
	const route = "POST /sch/entries/{op}"

	refused := func(t *testing.T, status int, body []byte, hdr http.Header, wantStatus int, wantMsg string) {
		t.Helper()
		msg, id := errorBody(t, body)
		if status != wantStatus || msg != wantMsg {
			t.Errorf("got %d %q, want %d %q", status, msg, wantStatus, wantMsg)
		}
		if strings.Contains(string(body), schemaSecret) {
			t.Errorf("answer echoes the submitted value: %s", body)
		}
		if id != hdr.Get("X-Request-Id") {
			t.Errorf("request id %q, header %q", id, hdr.Get("X-Request-Id"))
		}
		lines := in.logs.Lines("request refused by schema", id)
		if len(lines) != 1 || lines[0]["security"] != true || lines[0]["app"] != schemaApp || lines[0]["function"] != "entries" || lines[0]["level"] != "WARN" {
			t.Errorf("security log line: %v", lines)
		}
		if strings.Contains(in.logs.String(), schemaSecret) {
			t.Errorf("the log carries the submitted value")
		}
	}

	t.Run("valid request reaches the function", func(t *testing.T) {
		st, body, _ := call(t, in.gateway, "POST", "/sch/entries/echo?limit=10", key,
			`{"value":"hello","tags":[{"name":"a"},{"name":"b"}]}`, "Content-Type", "application/json; charset=utf-8")
		if st != 200 || string(body) != `{"value":"hello","tags":[{"name":"a"},{"name":"b"}]}` {
			t.Fatalf("got %d %s", st, body)
		}
	})

	t.Run("body violation names the field, not the value", func(t *testing.T) {
		before := schemaViolations(t, in, "entries", route, "body")
		st, body, hdr := call(t, in.gateway, "POST", "/sch/entries/echo", key,
			`{"value":"x","tags":[{"name":"a"},{"name":"b"},{"name":4711}]}`)
		refused(t, st, body, hdr, 400, "request does not match schema: body.tags[2].name: type: want string")
		st, body, hdr = call(t, in.gateway, "POST", "/sch/entries/echo", key, `{"value":"x","key":"`+schemaSecret+` !"}`)
		refused(t, st, body, hdr, 400, "request does not match schema: body.key: pattern: does not match ^[A-Za-z0-9/_-]{1,64}$")
		st, body, hdr = call(t, in.gateway, "POST", "/sch/entries/echo", key, `{"tags":[]}`)
		refused(t, st, body, hdr, 400, "request does not match schema: body.value: required")
		st, body, hdr = call(t, in.gateway, "POST", "/sch/entries/echo", key, `{"value":"`+schemaSecret+`"`)
		refused(t, st, body, hdr, 400, "body is not valid JSON")
		if got := schemaViolations(t, in, "entries", route, "body") - before; got != 4 {
			t.Errorf("body violations counted %v, want 4", got)
		}
	})

	t.Run("wrong content type", func(t *testing.T) {
		before := schemaViolations(t, in, "entries", route, "content_type")
		st, body, hdr := call(t, in.gateway, "POST", "/sch/entries/echo", key, `{"value":"x"}`, "Content-Type", "text/plain")
		refused(t, st, body, hdr, 415, "unsupported media type (accepted: application/json)")
		if got := schemaViolations(t, in, "entries", route, "content_type") - before; got != 1 {
			t.Errorf("content type violations counted %v, want 1", got)
		}
		// A route listing content types without a schema checks them too.
		if st, body, _ := call(t, in.gateway, "PUT", "/sch/csv/echo", key, "a,b", "Content-Type", "text/csv"); st != 200 || string(body) != "a,b" {
			t.Errorf("csv: %d %s", st, body)
		}
		if st, _, _ := call(t, in.gateway, "PUT", "/sch/csv/echo", key, `{"a":1}`); st != 415 {
			t.Errorf("json on the csv route: %d", st)
		}
	})

	t.Run("bad query parameter", func(t *testing.T) {
		st, body, hdr := call(t, in.gateway, "POST", "/sch/entries/echo?limit="+schemaSecret, key, `{"value":"x"}`)
		refused(t, st, body, hdr, 400, "request does not match schema: query.limit: pattern: does not match ^[0-9]{1,3}$")
		st, body, hdr = call(t, in.gateway, "POST", "/sch/entries/echo?debug=1", key, `{"value":"x"}`)
		refused(t, st, body, hdr, 400, "request does not match schema: query.debug: not allowed")
		if got := schemaViolations(t, in, "entries", route, "query"); got < 2 {
			t.Errorf("query violations counted %v", got)
		}
	})

	t.Run("bad path parameter", func(t *testing.T) {
		st, body, hdr := call(t, in.gateway, "POST", "/sch/entries/"+schemaSecret, key, `{"value":"x"}`)
		refused(t, st, body, hdr, 400, "request does not match schema: params.op: enum: not an allowed value")
		if got := schemaViolations(t, in, "entries", route, "params"); got < 1 {
			t.Errorf("params violations counted %v", got)
		}
	})

	t.Run("unauthenticated requests learn nothing of the schema", func(t *testing.T) {
		st, body, _ := call(t, in.gateway, "POST", "/sch/entries/nope", "", `not json`, "Content-Type", "text/plain")
		if msg, _ := errorBody(t, body); st != 401 || msg != "unauthorized" {
			t.Errorf("got %d %q", st, msg)
		}
	})

	// An event a function publishes for another is checked against the
	// consumer's schema: a violation is dead-lettered at once with the
	// reason, a valid one is processed.
	t.Run("event published by a function", func(t *testing.T) {
		o, badID := probeAt(t, in, key, "publish", map[string]any{"topic": "sch.entry", "value": `{"id":"` + schemaSecret + `"}`})
		if !o.OK {
			t.Fatalf("publish: %s", o.Error)
		}
		var dl client.DeadLetter
		eventually(t, 15*time.Second, "the invalid event in the dead-letter stream", func() bool {
			var ok bool
			dl, ok = deadLetterOf(t, in, schemaApp, badID, "consumer")
			return ok
		})
		if dl.Function != "consumer" || dl.Topic != "sch.entry" || dl.Attempts != 1 ||
			dl.Error != "event does not match schema: event.id: type: want integer" {
			t.Errorf("dead letter: %+v", dl)
		}
		if invoked(t, in, schemaApp, "consumer", badID) {
			t.Error("the consumer ran with an event that violates its schema")
		}
		lines := in.logs.Lines("event rejected", badID)
		if len(lines) != 1 || lines[0]["security"] != true || lines[0]["function"] != "consumer" ||
			lines[0]["reason"] != "event does not match schema: event.id: type: want integer" {
			t.Errorf("security log line: %v", lines)
		}
		if got := schemaViolations(t, in, "consumer", "event:sch.entry", "event"); got < 1 {
			t.Errorf("event violations counted %v", got)
		}

		o, goodID := probeAt(t, in, key, "publish", map[string]any{"topic": "sch.entry", "value": `{"id":7}`})
		if !o.OK {
			t.Fatalf("publish: %s", o.Error)
		}
		eventually(t, 15*time.Second, "the consumer to store the valid event", func() bool {
			o, _ := probeAt(t, in, key, "kv-get", map[string]any{"table": "events", "key": goodID})
			return o.OK && o.Value == `{"id":7}`
		})
	})

	t.Run("object event", func(t *testing.T) {
		o, badID := probeAt(t, in, key, "obj-put", map[string]any{"key": "sch/bad/1", "value": "x"})
		if !o.OK {
			t.Fatalf("put: %s", o.Error)
		}
		o, goodID := probeAt(t, in, key, "obj-put", map[string]any{"key": "sch/ok/1", "value": "x"})
		if !o.OK {
			t.Fatalf("put: %s", o.Error)
		}
		eventually(t, 15*time.Second, "the watcher to see the valid object event", func() bool {
			o, _ := probeAt(t, in, key, "kv-get", map[string]any{"table": "events", "key": goodID})
			return o.OK && o.Value == "put:sch/ok/1"
		})
		var dl client.DeadLetter
		eventually(t, 10*time.Second, "the invalid object event in the dead-letter stream", func() bool {
			var ok bool
			dl, ok = deadLetterOf(t, in, schemaApp, badID, "watcher")
			return ok
		})
		if dl.Error != "object event does not match schema: object.key: pattern: does not match ^sch/ok/" || dl.Attempts != 1 {
			t.Errorf("dead letter: %+v", dl)
		}
		if got := schemaViolations(t, in, "watcher", "object:sch/|put", "object"); got < 1 {
			t.Errorf("object violations counted %v", got)
		}
	})

	// A deploy whose schema is broken or missing is refused with 400 and
	// the version that was active keeps serving, schemas included.
	t.Run("broken schema refuses the deploy", func(t *testing.T) {
		text, err := os.ReadFile(filepath.Join(dir, "aegis.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		schemas := map[string]string{}
		for _, name := range []string{"entry.json", "defs/common.json", "entry-query.json", "entry-params.json", "entry-event.json", "object-event.json"} {
			b, err := os.ReadFile(filepath.Join(dir, "schemas", filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			schemas["schemas/"+name] = string(b)
		}
		sum := sha256.Sum256(probeModule(t))
		hexsum := hex.EncodeToString(sum[:])
		modules := map[string]string{"entries": hexsum, "consumer": hexsum, "watcher": hexsum}
		deploy := func(schemas map[string]string) error {
			_, err := in.admin.Deploy(ctx, schemaApp, client.DeployRequest{Manifest: string(text), File: "aegis.yaml", Modules: modules, Schemas: schemas})
			return err
		}
		broken := maps.Clone(schemas)
		broken["schemas/entry-event.json"] = `{"type": "integr"}`
		missing := maps.Clone(schemas)
		delete(missing, "schemas/defs/common.json")
		for name, tt := range map[string]struct {
			schemas map[string]string
			want    []string
		}{
			"not a schema": {broken, []string{"functions.consumer.triggers[0].event.schema", "schemas/entry-event.json"}},
			"missing file": {missing, []string{"functions.entries.triggers[0].http.schema.body", "schemas/defs/common.json", "not sent with the deploy"}},
		} {
			err := deploy(tt.schemas)
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != 400 {
				t.Fatalf("%s: %v, want 400", name, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(apiErr.Message, w) {
					t.Errorf("%s: error lacks %q: %s", name, w, apiErr.Message)
				}
			}
		}
		if st, body, _ := call(t, in.gateway, "POST", "/sch/entries/echo", key, `{"value":"still here"}`); st != 200 || string(body) != `{"value":"still here"}` {
			t.Errorf("active version stopped serving: %d %s", st, body)
		}
		if st, _, _ := call(t, in.gateway, "POST", "/sch/entries/echo", key, `{}`); st != 400 {
			t.Errorf("active version lost its schema: %d", st)
		}
	})
}

// probeAt calls the entries function of the schema app with op.
func probeAt(t *testing.T, in *instance, key, op string, body map[string]any) (outcome, string) {
	t.Helper()
	if _, ok := body["value"]; !ok {
		body["value"] = ""
	}
	return probeRoute(t, in.gateway, key, "/sch/entries/"+op, body)
}

// probeRoute is probe for any route of the probe module.
func probeRoute(t *testing.T, gw, key, path string, in any) (outcome, string) {
	t.Helper()
	status, body, hdr := call(t, gw, "POST", path, key, in)
	if status != 200 {
		t.Fatalf("POST %s: status %d body %s", path, status, body)
	}
	var o outcome
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, body)
	}
	return o, hdr.Get("X-Request-Id")
}
