package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
)

// withFunction builds a manifest whose only function "f" has source f.wasm
// followed by body (already indented by four spaces). body starts at line 5.
func withFunction(body string) string {
	return "app: demo\nfunctions:\n  f:\n    source: f.wasm\n" + body
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, m *Manifest)
	}{
		{
			name: "minimal",
			yaml: withFunction(""),
			check: func(t *testing.T, m *Manifest) {
				equal(t, m.App, "demo")
				equal(t, m.Functions["f"].Name, "f")
				equal(t, m.Functions["f"].Source, "f.wasm")
			},
		},
		{
			name: "method is upper-cased",
			yaml: withFunction("    triggers:\n      - http: { method: post, path: / }\n"),
			check: func(t *testing.T, m *Manifest) {
				equal(t, m.Functions["f"].Triggers[0].HTTP.Method, "POST")
			},
		},
		{
			name: "egress hosts are lower-cased",
			yaml: withFunction("    grants: { egress: { hosts: [API.Example.COM] } }\n"),
			check: func(t *testing.T, m *Manifest) {
				equal(t, m.Functions["f"].Grants.Egress.Hosts[0], "api.example.com")
			},
		},
		{
			name: "secret grants",
			yaml: withFunction("    grants: { secrets: [WEBHOOK_TOKEN, db.password, a-b_c.9, " + strings.Repeat("x", 64) + "] }\n"),
			check: func(t *testing.T, m *Manifest) {
				g := m.Functions["f"].Grants.Secrets
				equal(t, len(g), 4)
				equal(t, g[0], "WEBHOOK_TOKEN")
				equal(t, g[1], "db.password")
			},
		},
		{
			name: "units",
			yaml: withFunction("    limits: { timeout: 1m30s, memory: 1GB, max_body: 1024, max_response: 1 KiB, concurrency: 0o17 }\n"),
			check: func(t *testing.T, m *Manifest) {
				l := m.Functions["f"].Limits
				equal(t, l.Timeout, Duration(90e9))
				equal(t, l.Memory, GB)
				equal(t, l.MaxBody, KiB)
				equal(t, l.MaxResponse, KiB)
				equal(t, l.Concurrency, 15)
			},
		},
		{
			name: "a leading zero is decimal",
			yaml: withFunction("    limits: { concurrency: 017 }\n"),
			check: func(t *testing.T, m *Manifest) {
				equal(t, m.Functions["f"].Limits.Concurrency, 17)
			},
		},
		{
			name: "empty values mean unset",
			yaml: withFunction("    triggers: []\n    grants:\n    limits: {}\n    isolation:\n"),
			check: func(t *testing.T, m *Manifest) {
				f := m.Functions["f"]
				if f.Triggers != nil || !reflect.DeepEqual(f.Grants, Grants{}) || f.Limits != (Limits{}) || f.Isolation != "" {
					t.Errorf("got %+v, want zero values", f)
				}
			},
		},
		{
			name: "same path, different methods",
			yaml: withFunction("    triggers:\n      - http: { method: GET, path: \"/a/{id}\" }\n      - http: { method: PUT, path: \"/a/{id}\" }\n"),
		},
		{
			name: "explicit standard tags",
			yaml: withFunction("    limits: { concurrency: !!int 5 }\n    isolation: !!str reuse\n"),
			check: func(t *testing.T, m *Manifest) {
				equal(t, m.Functions["f"].Limits.Concurrency, 5)
			},
		},
		{
			name: "anchors without aliases are harmless",
			yaml: withFunction("    limits: &l { timeout: 1s }\n"),
		},
		{
			name: "object prefix and grant patterns",
			yaml: withFunction("    triggers:\n      - object: { prefix: a/b/ }\n    grants:\n      objects: { read: [a/b/c.txt, a/b*, \"*\"] }\n      kv: { read: [t_1-x, \"t*\"] }\n      events: { publish: [a.b.c, \"a.*\", \"a*\", \"*\"] }\n"),
		},
		{
			name: "cron descriptors",
			yaml: withFunction("    triggers:\n      - schedule: { cron: \"@hourly\" }\n      - schedule: { cron: \"@every 10s\" }\n      - schedule: { cron: \"0 9 * * MON-FRI\" }\n"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("aegis.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the whole error text
	}{
		{"empty", "", "aegis.yaml: manifest is empty"},
		{"only a comment", "# nothing\n", "aegis.yaml: manifest is empty"},
		{"null document", "~\n", "aegis.yaml:1: manifest is empty"},
		{"not a mapping", "- a\n", `aegis.yaml:1: expected a mapping, got a list`},
		{"syntax", "app: [\n", "aegis.yaml:1: did not find expected node content"},
		{"two documents", withFunction("") + "---\napp: x\n", "aegis.yaml:5: manifest must be a single YAML document"},
		{"no app", "functions:\n  f: { source: f.wasm }\n", "aegis.yaml:1: app: app name is required"},
		{"bad app", "app: Demo\nfunctions:\n  f: { source: f.wasm }\n", `aegis.yaml:1: app: invalid app name "Demo": use 1-63 lowercase letters, digits and '-', starting with a letter`},
		{"no functions", "app: demo\n", "aegis.yaml:1: functions: at least one function is required"},
		{"empty functions", "app: demo\nfunctions: {}\n", "aegis.yaml:2: functions: at least one function is required"},
		{"bad function name", "app: demo\nfunctions:\n  Save_Entry: { source: f.wasm }\n", `aegis.yaml:3: functions.Save_Entry: invalid function name "Save_Entry": use 1-63 lowercase letters, digits and '-', starting with a letter`},
		{"function name too long", "app: demo\nfunctions:\n  " + "a" + strings.Repeat("b", 63) + ": { source: f.wasm }\n", "invalid function name"},
		{"function without body", "app: demo\nfunctions:\n  f:\n", "aegis.yaml:3: functions.f.source: source is required (a directory or a .wasm file)"},
		{"source url", "app: demo\nfunctions:\n  f: { source: \"https://x/f.wasm\" }\n", "aegis.yaml:3: functions.f.source: source must be a local path (a directory or a .wasm file), not a URL"},
		{"unknown field", withFunction("    scheam: x\n"), `aegis.yaml:5: functions.f: unknown field "scheam"`},
		{"unknown nested field", withFunction("    triggers:\n      - http: { method: GET, path: /, scheam: x.json }\n"), `aegis.yaml:6: functions.f.triggers[0].http: unknown field "scheam"`},
		{"duplicate key", withFunction("    source: g.wasm\n"), `aegis.yaml:5: functions.f.source: duplicate key "source" (first at line 4)`},
		{"duplicate function", withFunction("  f:\n    source: g.wasm\n"), `aegis.yaml:5: functions.f: duplicate key "f" (first at line 3)`},
		{"alias", "app: &a demo\nfunctions:\n  f: { source: *a }\n", "aegis.yaml:3: functions.f.source: YAML aliases are not supported"},
		{"merge key", withFunction("    <<: { isolation: reuse }\n"), "aegis.yaml:5: functions.f: mapping keys must be plain names"},
		{"custom tag", withFunction("    isolation: !secret reuse\n"), `aegis.yaml:5: functions.f.isolation: unsupported YAML tag "!secret"`},
		{"binary tag", withFunction("    isolation: !!binary cmV1c2U=\n"), `aegis.yaml:5: functions.f.isolation: unsupported YAML tag "!!binary"`},
		{"wrong kind", withFunction("    triggers: {}\n"), "aegis.yaml:5: functions.f.triggers: expected a list, got a mapping"},
		{"string for int", withFunction("    limits: { concurrency: \"5\" }\n"), `aegis.yaml:5: functions.f.limits.concurrency: expected an integer, got "5"`},
		{"float for int", withFunction("    limits: { concurrency: 5.5 }\n"), `aegis.yaml:5: functions.f.limits.concurrency: expected an integer, got "5.5"`},
		{"string for bool", withFunction("    triggers:\n      - http: { method: GET, path: /, public: \"yes\" }\n"), `aegis.yaml:6: functions.f.triggers[0].http.public: expected true or false, got "yes"`},
		{"bad duration", withFunction("    limits:\n      timeout: 2x\n"), `aegis.yaml:6: functions.f.limits.timeout: invalid duration "2x"`},
		{"duration without unit", withFunction("    limits: { timeout: 5 }\n"), `aegis.yaml:5: functions.f.limits.timeout: invalid duration "5"`},
		{"bad size", withFunction("    limits: { memory: 64 MiBs }\n"), `aegis.yaml:5: functions.f.limits.memory: invalid size "64 MiBs"`},
		{"fractional size", withFunction("    limits: { memory: 1.5GiB }\n"), `invalid size "1.5GiB"`},
		{"mapping for duration", withFunction("    limits: { timeout: { s: 1 } }\n"), `functions.f.limits.timeout: expected a duration such as "2s", got a mapping`},
		{"timeout too short", withFunction("    limits: { timeout: 500us }\n"), "functions.f.limits.timeout: timeout must be between 1ms and 5m, got 500µs"},
		{"timeout too long", withFunction("    limits: { timeout: 301s }\n"), "timeout must be between 1ms and 5m, got 5m1s"},
		{"negative timeout", withFunction("    limits: { timeout: -1s }\n"), "timeout must be between 1ms and 5m, got -1s"},
		{"memory too small", withFunction("    limits: { memory: 1000KiB }\n"), "functions.f.limits.memory: memory must be between 1MiB and 4GiB, got 1000KiB"},
		{"memory too large", withFunction("    limits: { memory: 5GB }\n"), "memory must be between 1MiB and 4GiB, got 5GB"},
		{"concurrency", withFunction("    limits: { concurrency: 1001 }\n"), "functions.f.limits.concurrency: concurrency must be between 0 and 1000, got 1001"},
		{"negative concurrency", withFunction("    limits: { concurrency: -1 }\n"), "concurrency must be between 0 and 1000, got -1"},
		{"max_body", withFunction("    limits: { max_body: 65MiB }\n"), "functions.f.limits.max_body: max_body must be between 0 and 64MiB, got 65MiB"},
		{"max_response", withFunction("    limits: { max_response: 1TB }\n"), "functions.f.limits.max_response: max_response must be between 0 and 64MiB, got 1TB"},
		{"max_fetches", withFunction("    limits: { max_fetches: 10001 }\n"), "functions.f.limits.max_fetches: max_fetches must be between 0 and 10000, got 10001"},
		{"max_publishes", withFunction("    limits: { max_publishes: -1 }\n"), "functions.f.limits.max_publishes: max_publishes must be between 0 and 10000, got -1"},
		{"max_egress", withFunction("    limits: { max_egress: 2GiB }\n"), "functions.f.limits.max_egress: max_egress must be between 0 and 1GiB, got 2GiB"},
		{"max_event_size", withFunction("    limits: { max_event_size: 2MiB }\n"), "functions.f.limits.max_event_size: max_event_size must be between 0 and 1MiB, got 2MiB"},
		{"isolation", withFunction("    isolation: shared\n"), `aegis.yaml:5: functions.f.isolation: unsupported isolation "shared" (use reuse or per-request)`},
		{"trigger without target", withFunction("    triggers:\n      - {}\n"), "aegis.yaml:6: functions.f.triggers[0]: trigger has no target (set one of http, event, object, schedule)"},
		{"trigger with null target", withFunction("    triggers:\n      - http:\n"), "aegis.yaml:6: functions.f.triggers[0]: trigger has no target"},
		{"trigger with two kinds", withFunction("    triggers:\n      - http: { method: GET, path: / }\n        event: { topic: a }\n"), "aegis.yaml:6: functions.f.triggers[0]: trigger names more than one kind"},
		{"no method", withFunction("    triggers:\n      - http: { path: / }\n"), "aegis.yaml:6: functions.f.triggers[0].http.method: method is required"},
		{"bad method", withFunction("    triggers:\n      - http: { method: TRACE, path: / }\n"), `functions.f.triggers[0].http.method: unsupported method "TRACE" (use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)`},
		{"unicode method", withFunction("    triggers:\n      - http: { method: poſt, path: / }\n"), `unsupported method "POſT"`},
		{"no path", withFunction("    triggers:\n      - http: { method: GET }\n"), "functions.f.triggers[0].http.path: path is required"},
		{"relative path", withFunction("    triggers:\n      - http: { method: GET, path: entries }\n"), `path "entries" must start with "/"`},
		{"reserved path", withFunction("    triggers:\n      - http: { method: GET, path: \"/_aegis/invocations/{id}\" }\n"), `path "/_aegis/invocations/{id}" is reserved`},
		{"reserved path any case", withFunction("    triggers:\n      - http: { method: GET, path: /_AEGISx }\n"), `is reserved`},
		{"trailing slash", withFunction("    triggers:\n      - http: { method: GET, path: /a/ }\n"), `path "/a/" has an empty segment`},
		{"dot segment", withFunction("    triggers:\n      - http: { method: GET, path: /a/../b }\n"), `path "/a/../b" has a ".." segment`},
		{"bad segment", withFunction("    triggers:\n      - http: { method: GET, path: \"/a b\" }\n"), `segment "a b" may contain only`},
		{"partial param", withFunction("    triggers:\n      - http: { method: GET, path: \"/a{id}\" }\n"), `segment "a{id}" may contain only`},
		{"bad param", withFunction("    triggers:\n      - http: { method: GET, path: \"/{1id}\" }\n"), `invalid parameter "{1id}"`},
		{"duplicate param", withFunction("    triggers:\n      - http: { method: GET, path: \"/{id}/x/{id}\" }\n"), `duplicate parameter "id"`},
		{"unsupported auth", withFunction("    triggers:\n      - http: { method: GET, path: /, auth: [oauth] }\n"), `aegis.yaml:6: functions.f.triggers[0].http.auth[0]: unsupported auth scheme "oauth" (use api-key, jwt or hmac)`},
		{"duplicate auth", withFunction("    triggers:\n      - http: { method: GET, path: /, auth: [api-key, api-key] }\n"), `http.auth[1]: duplicate auth scheme "api-key"`},
		{"public with auth", withFunction("    triggers:\n      - http: { method: GET, path: /, auth: [api-key], public: true }\n"), "functions.f.triggers[0].http.public: a public route cannot also list auth schemes"},
		{"public with rule", withFunction("    triggers:\n      - http: { method: GET, path: /, public: true, rule: 'true' }\n"), "aegis.yaml:6: functions.f.triggers[0].http.rule: a public route has no identity to check: remove rule or public"},
		{"blank rule", withFunction("    triggers:\n      - http: { method: GET, path: /, rule: '  ' }\n"), "functions.f.triggers[0].http.rule: rule is empty"},
		{"long rule", withFunction("    triggers:\n      - http: { method: GET, path: /, rule: '" + strings.Repeat("a", MaxRuleLen+1) + "' }\n"), "functions.f.triggers[0].http.rule: rule is longer than 4096 bytes"},
		{
			"route claimed twice in one function",
			withFunction("    triggers:\n      - http: { method: GET, path: \"/a/{id}\" }\n      - http: { method: get, path: \"/a/{name}\" }\n"),
			"aegis.yaml:7: functions.f.triggers[1].http.path: route GET /a/{name} is already claimed by functions.f.triggers[0].http",
		},
		{
			"route claimed by two functions",
			"app: demo\nfunctions:\n  b:\n    source: b.wasm\n    triggers: [ { http: { method: POST, path: /x } } ]\n  a:\n    source: a.wasm\n    triggers: [ { http: { method: POST, path: /x } } ]\n",
			"aegis.yaml:5: functions.b.triggers[0].http.path: route POST /x is already claimed by functions.a.triggers[0].http",
		},
		{"schema is a file or a mapping", withFunction("    triggers:\n      - http: { method: GET, path: /, schema: [entry.json] }\n"), `http.schema: expected a mapping`},
		{"shorthand schema not a file", withFunction("    triggers:\n      - http: { method: POST, path: /, schema: 5 }\n"), `aegis.yaml:6: functions.f.triggers[0].http.schema.body: invalid schema file "5": must end in .json`},
		{"schema escapes", withFunction("    triggers:\n      - http: { method: POST, path: /, schema: { body: ../x.json } }\n"), `functions.f.triggers[0].http.schema.body: invalid schema file "../x.json": must not contain empty, "." or ".." segments`},
		{"schema absolute", withFunction("    triggers:\n      - event: { topic: a, schema: /etc/x.json }\n"), `event.schema: invalid schema file "/etc/x.json": must be a relative path`},
		{"schema not json", withFunction("    triggers:\n      - object: { prefix: a, schema: meta.yaml }\n"), `object.schema: invalid schema file "meta.yaml": must end in .json`},
		{"schema url", withFunction("    triggers:\n      - http: { method: GET, path: /, schema: { query: \"https://x/q.json\" } }\n"), `not a URL`},
		{"bad content type", withFunction("    triggers:\n      - http: { method: POST, path: /, content_types: [\"application/json; charset=utf-8\"] }\n"), `content_types[0]: invalid media type`},
		{"duplicate content type", withFunction("    triggers:\n      - http: { method: POST, path: /, content_types: [text/plain, Text/Plain] }\n"), `content_types[1]: duplicate media type "Text/Plain"`},
		{"private and public", withFunction("    triggers:\n      - http: { method: GET, path: /, private: true, public: true }\n"), `http.private: a route cannot be both private and public`},
		{"private with auth", withFunction("    triggers:\n      - http: { method: GET, path: /, private: true, auth: [api-key] }\n"), `http.private: a private route is called only by functions with an invoke grant: remove auth`},
		{"private with rule", withFunction("    triggers:\n      - http: { method: GET, path: /, private: true, rule: \"true\" }\n"), `remove rule`},
		{"invoke self", withFunction("    triggers:\n      - http: { method: GET, path: / }\n    grants: { invoke: [f] }\n"), `functions.f.grants.invoke[0]: a function cannot invoke itself`},
		{"invoke unknown", withFunction("    grants: { invoke: [g] }\n"), `invoke grant names "g", which is not a function of this app`},
		{"invoke without route", "app: demo\nfunctions:\n  a:\n    source: a.wasm\n    grants: { invoke: [b, b] }\n  b:\n    source: b.wasm\n",
			`function "b" has no http trigger to invoke`},
		{"no topic", withFunction("    triggers:\n      - event: { max_attempts: 1 }\n"), "functions.f.triggers[0].event.topic: topic is required"},
		{"bad topic", withFunction("    triggers:\n      - event: { topic: a..b }\n"), `invalid topic "a..b"`},
		{"long topic", withFunction("    triggers:\n      - event: { topic: " + strings.Repeat("a", 129) + " }\n"), "topic is longer than 128 characters"},
		{"max_attempts", withFunction("    triggers:\n      - event: { topic: a, max_attempts: 101 }\n"), "functions.f.triggers[0].event.max_attempts: max_attempts must be between 0 and 100, got 101"},
		{"absolute prefix", withFunction("    triggers:\n      - object: { prefix: /a }\n"), `functions.f.triggers[0].object.prefix: invalid prefix "/a": must not start with "/"`},
		{"dotdot prefix", withFunction("    triggers:\n      - object: { prefix: a/../b }\n"), `invalid prefix "a/../b": must not contain a ".." segment`},
		{"bad operation", withFunction("    triggers:\n      - object: { prefix: a, operations: [put, update] }\n"), `functions.f.triggers[0].object.operations[1]: unsupported operation "update" (use put or delete)`},
		{"duplicate operation", withFunction("    triggers:\n      - object: { prefix: a, operations: [put, put] }\n"), `duplicate operation "put"`},
		{"no cron", withFunction("    triggers:\n      - schedule: {}\n"), "functions.f.triggers[0].schedule.cron: cron is required"},
		{"bad cron", withFunction("    triggers:\n      - schedule: { cron: \"61 * * * *\" }\n"), `invalid cron expression "61 * * * *"`},
		{"six-field cron", withFunction("    triggers:\n      - schedule: { cron: \"0 0 * * * *\" }\n"), `invalid cron expression`},
		{"cron time zone", withFunction("    triggers:\n      - schedule: { cron: \"TZ=Europe/Paris 0 9 * * *\" }\n"), "time zone prefixes (TZ=, CRON_TZ=) are not supported"},
		{"bad table", withFunction("    grants: { kv: { read: [a.b] } }\n"), `functions.f.grants.kv.read[0]: invalid table pattern "a.b": use 1-64 letters, digits, '_' and '-'`},
		{"star inside pattern", withFunction("    grants: { kv: { write: [\"a*b\"] } }\n"), `functions.f.grants.kv.write[0]: invalid table pattern "a*b": '*' may appear only at the end`},
		{"empty pattern", withFunction("    grants: { kv: { write: [\"\"] } }\n"), `invalid table pattern ""`},
		{"object dotdot", withFunction("    grants: { objects: { read: [\"../*\"] } }\n"), `functions.f.grants.objects.read[0]: invalid object pattern "../*": must not contain a ".." segment`},
		{"object absolute", withFunction("    grants: { objects: { write: [\"/etc/passwd\"] } }\n"), `invalid object pattern "/etc/passwd": must not start with "/"`},
		{"object double slash", withFunction("    grants: { objects: { write: [\"a//b\"] } }\n"), `invalid object pattern "a//b": has an empty segment`},
		{"topic pattern", withFunction("    grants: { events: { publish: [\"a..*\"] } }\n"), `functions.f.grants.events.publish[0]: invalid topic pattern "a..*"`},
		{"egress star", withFunction("    grants: { egress: { hosts: [\"*\"] } }\n"), `functions.f.grants.egress.hosts[0]: invalid egress host "*": use a host name`},
		{"egress url", withFunction("    grants: { egress: { hosts: [\"https://api.example.com\"] } }\n"), `invalid egress host "https://api.example.com"`},
		{"egress port", withFunction("    grants: { egress: { hosts: [\"api.example.com:99999\"] } }\n"), `invalid egress host "api.example.com:99999": invalid port "99999"`},
		{"egress cidr host bits", withFunction("    grants: { egress: { hosts: [10.1.2.3/8] } }\n"), `invalid egress host "10.1.2.3/8": CIDR has host bits set (did you mean 10.0.0.0/8?)`},
		{"egress numeric name", withFunction("    grants: { egress: { hosts: [\"127.1\"] } }\n"), `invalid egress host "127.1": the last label of a host name cannot be a number`},
		{"egress octal ip", withFunction("    grants: { egress: { hosts: [\"0177.0.0.1\"] } }\n"), `invalid egress host "0177.0.0.1"`},
		{"egress ipv4 brackets", withFunction("    grants: { egress: { hosts: [\"[10.0.0.1]:80\"] } }\n"), `brackets are only for IPv6 addresses`},
		{"egress zone", withFunction("    grants: { egress: { hosts: [\"[fe80::1%eth0]:80\"] } }\n"), `IPv6 zones are not supported`},
		{"secret pattern", withFunction("    grants: { secrets: [\"DB_*\"] }\n"), `functions.f.grants.secrets[0]: invalid secret name "DB_*": use letters, digits, '_', '-' and '.' (no patterns)`},
		{"secret star", withFunction("    grants: { secrets: [\"*\"] }\n"), `invalid secret name "*"`},
		{"secret empty", withFunction("    grants: { secrets: [\"\"] }\n"), `functions.f.grants.secrets[0]: invalid secret name "": name is empty`},
		{"secret long", withFunction("    grants: { secrets: [" + strings.Repeat("a", 65) + "] }\n"), `longer than 64 characters`},
		{"secret slash", withFunction("    grants: { secrets: [a/b] }\n"), `invalid secret name "a/b"`},
		{"secret space", withFunction("    grants: { secrets: [\"a b\"] }\n"), `invalid secret name "a b"`},
		{"secret duplicate", withFunction("    grants: { secrets: [TOKEN, db.pw, TOKEN] }\n"), `functions.f.grants.secrets[2]: duplicate secret grant "TOKEN"`},
		{"secrets not a list", withFunction("    grants: { secrets: TOKEN }\n"), `secrets`},
		{"egress mid wildcard", withFunction("    grants: { egress: { hosts: [\"api.*.com\"] } }\n"), `invalid egress host "api.*.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("aegis.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error %q", m, tt.want)
			}
			if m != nil {
				t.Errorf("Parse returned a manifest with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if !errors.Is(err, aegis.ErrInvalidArgument) {
				t.Errorf("errors.Is(err, ErrInvalidArgument) = false")
			}
		})
	}
}

// TestParseReportsEverything checks that one pass finds all problems, in
// line order, and that a value which failed to decode is not reported a
// second time by validation.
func TestParseReportsEverything(t *testing.T) {
	src := `app: Demo
functions:
  f:
    source: ""
    triggers:
      - http: { method: GET, path: x, auth: [oauth] }
      - http: "oops"
    limits:
      timeout: 2x
      memory: 1KiB
`
	_, err := Parse("aegis.yaml", []byte(src))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not Errors", err)
	}
	want := []string{
		`aegis.yaml:1: app: invalid app name "Demo": use 1-63 lowercase letters, digits and '-', starting with a letter`,
		`aegis.yaml:4: functions.f.source: source is required (a directory or a .wasm file)`,
		`aegis.yaml:6: functions.f.triggers[0].http.path: path "x" must start with "/"`,
		`aegis.yaml:6: functions.f.triggers[0].http.auth[0]: unsupported auth scheme "oauth" (use api-key, jwt or hmac)`,
		`aegis.yaml:7: functions.f.triggers[1].http: expected a mapping, got "oops"`,
		`aegis.yaml:9: functions.f.limits.timeout: invalid duration "2x"`,
		`aegis.yaml:10: functions.f.limits.memory: memory must be between 1MiB and 4GiB, got 1KiB`,
	}
	equal(t, err.Error(), strings.Join(want, "\n"))

	var one *Error
	if !errors.As(err, &one) {
		t.Fatal("errors.As(*Error) failed")
	}
	equal(t, *one, Error{File: "aegis.yaml", Line: 1, Field: "app", Msg: `invalid app name "Demo": use 1-63 lowercase letters, digits and '-', starting with a letter`})
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Field: "app", Msg: "m"}, "a.yaml:3: app: m"},
		{Error{File: "a.yaml", Field: "app", Msg: "m"}, "a.yaml: app: m"},
		{Error{Line: 3, Msg: "m"}, "line 3: m"},
		{Error{Field: "app", Msg: "m"}, "app: m"},
		{Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		equal(t, tt.err.Error(), tt.want)
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte(withFunction("") + "#" + strings.Repeat("x", MaxSize))
	_, err := Parse("aegis.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "aegis.yaml: manifest is larger than 1048576 bytes") {
		t.Fatalf("got %v", err)
	}
}

// TestAliasBomb makes sure a billion-laughs document is refused without
// being expanded.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 30; i++ {
		b.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), `unknown field "a0"`) {
		t.Fatalf("got %v", err)
	}
	_, err = Parse("bomb.yaml", []byte(withFunction("    triggers: *a0\n")))
	if err == nil {
		t.Fatal("alias accepted")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aegis.yaml")
	if err := os.WriteFile(path, []byte(withFunction("    isolation: bad\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":5: functions.f.isolation:") {
		t.Fatalf("got %v", err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want not exist", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}

	if err := os.WriteFile(path, []byte(withFunction("")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	m := &Manifest{App: "demo", Functions: map[string]*Function{
		"f": {Source: "f.wasm", Triggers: []Trigger{{HTTP: &HTTPTrigger{Method: "get", Path: "/"}}}},
	}}
	err := m.Validate()
	equal(t, err.Error(), `functions.f.triggers[0].http.method: unsupported method "get" (use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)`)

	m.Functions["f"].Triggers[0].HTTP.Method = "GET"
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.Functions["g"] = nil
	m.Functions["h"] = &Function{Name: "x", Source: "h.wasm"}
	equal(t, m.Validate().Error(), "functions.g.source: source is required (a directory or a .wasm file)\n"+
		`functions.h: function name "x" does not match its key "h"`)
	if err := (&Manifest{}).Validate(); err == nil || !strings.Contains(err.Error(), "app: app name is required\nfunctions: at least one function is required") {
		t.Fatalf("got %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	src := withFunction(`    triggers:
      - http: { method: GET, path: /a }
      - http: { method: GET, path: /b, public: true }
      - event: { topic: t }
      - event: { topic: u, max_attempts: 7 }
      - object: { prefix: p/ }
      - object: { prefix: q/, operations: [delete] }
      - schedule: { cron: "@daily" }
    limits: { timeout: 1s, concurrency: 2 }
`) + "  g:\n    source: ./g\n    isolation: per-request\n"
	m, err := Parse("aegis.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	before := clonedJSON(t, m)
	d := m.WithDefaults()
	equal(t, clonedJSON(t, m), before) // the original is untouched

	f := d.Functions["f"]
	equal(t, f.Name, "f")
	equal(t, f.Isolation, IsolationReuse)
	equal(t, f.Limits, Limits{Timeout: Duration(1e9), Memory: DefaultMemory, Concurrency: 2, MaxBody: DefaultMaxBody, MaxResponse: DefaultMaxResponse,
		MaxFetches: DefaultMaxFetches, MaxEgress: DefaultMaxEgress, MaxPublishes: DefaultMaxPublishes, MaxEventSize: DefaultMaxEventSize})
	equal(t, f.Triggers[0].HTTP.Auth, []string{"api-key"})
	equal(t, f.Triggers[1].HTTP.Auth, []string(nil))
	equal(t, f.Triggers[2].Event.MaxAttempts, DefaultMaxAttempts)
	equal(t, f.Triggers[3].Event.MaxAttempts, 7)
	equal(t, f.Triggers[4].Object.Operations, []string{"put", "delete"})
	equal(t, f.Triggers[5].Object.Operations, []string{"delete"})
	g := d.Functions["g"]
	equal(t, g.Isolation, IsolationPerRequest)
	equal(t, g.Limits.Timeout.Std(), DefaultTimeout)
	equal(t, g.Limits.Concurrency, DefaultConcurrency)

	// A manifest with defaults applied is still valid, and applying them
	// again changes nothing.
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	equal(t, d.WithDefaults(), d)
	equal(t, d.FunctionNames(), []string{"f", "g"})
}

func TestFunctionNames(t *testing.T) {
	m := &Manifest{Functions: map[string]*Function{"c": nil, "a": nil, "b": nil}}
	equal(t, m.FunctionNames(), []string{"a", "b", "c"})
	equal(t, (&Manifest{}).FunctionNames(), []string{})
}

func clonedJSON(t *testing.T, m *Manifest) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func equal[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

// TestParseManyErrors checks that a large file full of mistakes is handled
// quickly and that the report is capped.
func TestParseManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("app: demo\nfunctions:\n")
	for i := 0; b.Len() < MaxSize-200; i++ {
		b.WriteString("  F" + strconv.Itoa(i) + ": { source: \"\", limits: { timeout: x }, triggers: [ http: 1, {} ] }\n")
	}
	_, err := Parse("aegis.yaml", []byte(b.String()))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	equal(t, len(list), maxErrors+1)
	if last := list[maxErrors].Error(); !strings.HasSuffix(last, "more errors not shown") {
		t.Errorf("last error = %q", last)
	}
}

func TestParseNotAMapping(t *testing.T) {
	for _, src := range []string{"- a\n", "just text\n", "42\n"} {
		_, err := Parse("aegis.yaml", []byte(src))
		var list Errors
		if !errors.As(err, &list) || len(list) != 1 || !strings.HasPrefix(list[0].Error(), "aegis.yaml:1: expected a mapping") {
			t.Errorf("Parse(%q) = %v", src, err)
		}
	}
}

func TestHTTPSchemaShorthand(t *testing.T) {
	m, err := Parse("aegis.yaml", []byte(withFunction("    triggers:\n      - http: { method: POST, path: /entries, schema: schemas/entry.json }\n")))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Functions["f"].Triggers[0].HTTP.Schema
	if got == nil || *got != (HTTPSchema{Body: "schemas/entry.json"}) {
		t.Fatalf("schema: FILE decoded as %+v, want the body schema", got)
	}
	if ct := m.WithDefaults().Functions["f"].Triggers[0].HTTP.ContentTypes; !slices.Equal(ct, DefaultContentTypes) {
		t.Errorf("content types %q, want the default of a body schema", ct)
	}
}

func TestSchemaFiles(t *testing.T) {
	data, err := os.ReadFile("testdata/good/everything.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse("everything.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	got := m.SchemaFiles()
	want := []string{"schemas/id.json", "schemas/note-query.json", "schemas/note.json", "schemas/order-created.json", "schemas/order.json", "schemas/recalc.json", "schemas/upload.json"}
	if !slices.Equal(got, want) {
		t.Errorf("SchemaFiles() = %q, want %q", got, want)
	}
	d := m.WithDefaults()
	for _, tr := range d.Functions["api"].Triggers {
		h := tr.HTTP
		switch {
		case h.Path == "/internal/recalc" && (len(h.Auth) != 0 || !slices.Equal(h.ContentTypes, DefaultContentTypes)):
			t.Errorf("private route with a body schema: auth %q, content types %q; want none and the default", h.Auth, h.ContentTypes)
		case h.Path == "/health" && len(h.ContentTypes) != 0:
			t.Errorf("route without a body schema got content types %q", h.ContentTypes)
		}
	}
}

// TestWithDefaultsCopiesDeeply: changing what WithDefaults returns, down to
// nested lists and pointers, leaves the manifest as written untouched.
func TestWithDefaultsCopiesDeeply(t *testing.T) {
	data, err := os.ReadFile("testdata/good/everything.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse("everything.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(m)
	d := m.WithDefaults()
	for _, fn := range d.Functions {
		for _, tr := range fn.Triggers {
			if h := tr.HTTP; h != nil {
				h.Path += "x"
				if len(h.Auth) > 0 {
					h.Auth[0] = "changed"
				}
				if len(h.ContentTypes) > 0 {
					h.ContentTypes[0] = "changed/changed"
				}
				if h.Schema != nil {
					h.Schema.Body = "changed.json"
				}
				if h.JWT != nil {
					h.JWT.Issuer, h.JWT.Algorithms[0] = "changed", "changed"
				}
				if h.HMAC != nil {
					h.HMAC.Secret = "changed"
				}
			}
			if tr.Event != nil {
				tr.Event.Topic = "changed"
			}
			if o := tr.Object; o != nil {
				o.Prefix, o.Operations[0] = "changed", "changed"
			}
			if tr.Schedule != nil {
				tr.Schedule.Cron = "changed"
			}
		}
		for _, list := range [][]string{fn.Grants.KV.Read, fn.Grants.KV.Write, fn.Grants.Objects.Write, fn.Grants.Events.Publish, fn.Grants.Egress.Hosts, fn.Grants.Invoke} {
			if len(list) > 0 {
				list[0] = "changed"
			}
		}
	}
	if after, _ := json.Marshal(m); string(after) != string(before) {
		t.Errorf("changing WithDefaults' result changed the manifest:\nbefore %s\nafter  %s", before, after)
	}
}
