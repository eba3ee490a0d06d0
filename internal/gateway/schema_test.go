package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aegis-platform/aegis/internal/admission"
	"github.com/aegis-platform/aegis/internal/httperr"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/route"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/manifest"
)

// schemaGateway serves one public and one api-key route with the same
// schema. Every request in these tests is refused before the function
// would run, so there is no dispatcher.
func schemaGateway(t *testing.T) (*Gateway, *bytes.Buffer, *metrics.Metrics) {
	t.Helper()
	s, err := schema.Compile(map[string][]byte{
		"order.json": []byte(`{"type":"object","required":["item"],"properties":{"item":{"type":"string","pattern":"^[a-z]+$"},"n":{"type":"integer"}}}`),
		"id.json":    []byte(`{"type":"object","properties":{"id":{"type":"string","pattern":"^[0-9]+$"}}}`),
		"q.json":     []byte(`{"type":"object","properties":{"limit":{"type":"string","pattern":"^[0-9]+$"}}}`),
	}, "order.json", "id.json", "q.json")
	if err != nil {
		t.Fatal(err)
	}
	check := schema.NewRequest(manifest.DefaultContentTypes, s["order.json"], s["q.json"], s["id.json"])
	table, err := route.New([]route.Route{
		{Method: "POST", Path: "/orders/{id}", App: "shop", Function: "orders", Public: true, Schema: check},
		{Method: "POST", Path: "/private/{id}", App: "shop", Function: "orders", Auth: []string{manifest.AuthAPIKey}, Schema: check},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := &manifest.Function{Name: "orders", Limits: manifest.Limits{MaxBody: 64}}
	snap := &registry.Snapshot{
		Apps: map[string]*registry.App{"shop": {Name: "shop", Functions: map[string]*registry.Function{
			"orders": {App: "shop", Spec: spec, Version: "v1"},
		}}},
		Routes: table,
	}
	var logs bytes.Buffer
	m := metrics.New()
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	g := New(Config{Snapshot: func() *registry.Snapshot { return snap }, Logger: logger,
		Admission: admission.New(logger, m)})
	t.Cleanup(g.Close)
	return g, &logs, m
}

func TestSchemaRefusals(t *testing.T) {
	g, logs, m := schemaGateway(t)
	tests := []struct {
		name, path, ctype, body string
		status                  int
		msg, kind               string
	}{
		{"body field", "/orders/1", "application/json", `{"item":"SECRET-Value-42"}`, 400,
			"request does not match schema: body.item: pattern: does not match ^[a-z]+$", "body"},
		{"missing field", "/orders/1", "application/json", `{"n":1}`, 400, "request does not match schema: body.item: required", "body"},
		{"not JSON", "/orders/1", "application/json", `item=SECRET-Value-42`, 400, "body is not valid JSON", "body"},
		{"content type", "/orders/1", "text/plain", `{"item":"pen"}`, 415, "unsupported media type (accepted: application/json)", "content_type"},
		{"path parameter", "/orders/SECRET-Value-42", "application/json", `{"item":"pen"}`, 400,
			"request does not match schema: params.id: pattern: does not match ^[0-9]+$", "params"},
		{"query parameter", "/orders/1?limit=SECRET-Value-42", "application/json", `{"item":"pen"}`, 400,
			"request does not match schema: query.limit: pattern: does not match ^[0-9]+$", "query"},
		// The body cap comes first: an oversized body is never parsed.
		{"over the cap", "/orders/1", "application/json", `{"item":"` + strings.Repeat("a", 100) + `"}`, 413, "request body too large", ""},
		// Authentication comes first: no schema details for strangers.
		{"unauthenticated", "/private/1", "text/plain", `nonsense`, 401, "unauthorized", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			req := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			req.Header.Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			var eb httperr.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tt.status || eb.Error != tt.msg || eb.RequestID == "" {
				t.Errorf("got %d %+v, want %d %q", rec.Code, eb, tt.status, tt.msg)
			}
			if strings.Contains(rec.Body.String(), "SECRET") {
				t.Errorf("response echoes the value: %s", rec.Body)
			}
			if tt.kind == "" {
				if strings.Contains(logs.String(), "refused by schema") {
					t.Errorf("schema ran: %s", logs)
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log: %q", logs)
			}
			if line["level"] != "WARN" || line["security"] != true || line["request_id"] != "0123456789abcdef0123456789abcdef" ||
				line["app"] != "shop" || line["function"] != "orders" || line["kind"] != tt.kind || line["route"] != "POST /orders/{id}" {
				t.Errorf("log line: %v", line)
			}
			if strings.Contains(logs.String(), "SECRET") {
				t.Errorf("log echoes the value: %s", logs)
			}
		})
	}
	// Counted per app, function, route and kind; the refusals before the
	// schema (413, 401) are not schema violations.
	if n, err := testutil.GatherAndCount(m.Registry(), metrics.SchemaViolationsName); err != nil || n != 4 {
		t.Fatalf("series: %d %v", n, err)
	}
	for kind, want := range map[string]float64{"body": 3, "content_type": 1, "params": 1, "query": 1} {
		if got := gathered(t, m, kind); got != want {
			t.Errorf("%s violations = %v, want %v", kind, got, want)
		}
	}
}

func gathered(t *testing.T, m *metrics.Metrics, kind string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] == "shop" && labels["function"] == "orders" && labels["trigger"] == "POST /orders/{id}" && labels["kind"] == kind {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// The check is reachable without the gateway: the invoke capability runs
// the same one for private routes.
func TestRequestCheckIsReusable(t *testing.T) {
	g, _, _ := schemaGateway(t)
	rt, params, err := g.cfg.Snapshot().Routes.Match("POST", "/orders/7")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Schema.Check("application/json", nil, params, []byte(`{"item":"pen"}`)); err != nil {
		t.Errorf("valid request refused: %v", err)
	}
	if err := rt.Schema.Check("application/json", nil, params, []byte(`{}`)); err == nil || err.(*schema.Error).Status() != http.StatusBadRequest {
		t.Errorf("invalid request: %v", err)
	}
}
