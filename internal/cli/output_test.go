package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/build"
	"github.com/aegis-platform/aegis/manifest"
)

// Tables print times in the local zone; pin it so expectations hold anywhere.
func pinLocalTime(t *testing.T) {
	t.Helper()
	old := displayZone
	displayZone = time.UTC
	t.Cleanup(func() { displayZone = old })
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func TestTables(t *testing.T) {
	pinLocalTime(t)
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{
			name: "apps",
			write: func(b *bytes.Buffer) error {
				return writeApps(b, formatTable, []client.App{
					{App: "travel-diary", Version: "v3", Functions: []string{"make-thumbnail", "save-entry"}, DeployedAt: t0},
					{App: "x", Version: "v1"},
				})
			},
			want: "" +
				"APP           VERSION  FUNCTIONS                  DEPLOYED\n" +
				"travel-diary  v3       make-thumbnail,save-entry  2025-03-04 05:06:07\n" +
				"x             v1       -                          -\n",
		},
		{
			name: "versions",
			write: func(b *bytes.Buffer) error {
				return writeVersions(b, formatTable, []client.Version{
					{Version: "v1", Number: 1, CreatedAt: t0, File: "aegis.yaml", Modules: map[string]string{"save-entry": sum, "make-thumbnail": "cd"}},
					{Version: "v2", Number: 2, Active: true, CreatedAt: t0.Add(time.Hour), File: "aegis.yaml", Modules: map[string]string{"save-entry": sum}},
				})
			},
			want: "" +
				"VERSION  ACTIVE  CREATED              FILE        MODULES\n" +
				"v1               2025-03-04 05:06:07  aegis.yaml  make-thumbnail=cd save-entry=abababababab\n" +
				"v2       *       2025-03-04 06:06:07  aegis.yaml  save-entry=abababababab\n",
		},
		{
			name: "functions",
			write: func(b *bytes.Buffer) error {
				return writeFunctions(b, formatTable, []client.Function{{
					App: "travel-diary", Function: "save-entry", Version: "v3", SHA256: sum, Isolation: "reuse",
					Triggers: []manifest.Trigger{
						{HTTP: &manifest.HTTPTrigger{Method: "POST", Path: "/entries"}},
						{Event: &manifest.EventTrigger{Topic: "image.saved"}},
					},
				}})
			},
			want: "" +
				"APP           FUNCTION    VERSION  TRIGGERS                               ISOLATION  SHA256\n" +
				"travel-diary  save-entry  v3       http POST /entries, event image.saved  reuse      abababababab\n",
		},
		{
			name: "routes",
			write: func(b *bytes.Buffer) error {
				return writeRoutes(b, formatTable, []client.Route{
					{Method: "POST", Path: "/entries", App: "d", Function: "save", Auth: []string{"api-key"}},
					{Method: "GET", Path: "/health", App: "d", Function: "ping", Public: true},
				})
			},
			want: "" +
				"METHOD  PATH      APP  FUNCTION  AUTH\n" +
				"POST    /entries  d    save      api-key\n" +
				"GET     /health   d    ping      public\n",
		},
		{
			name: "keys",
			write: func(b *bytes.Buffer) error {
				return writeKeys(b, formatTable, []client.Key{
					{Name: "ci", CreatedAt: t0},
					{Name: "old-phone", CreatedAt: t0, Revoked: true},
					{Name: "diary", CreatedAt: t0, Scopes: []string{"diary", "photos/thumb"}, ExpiresAt: &t0, Expired: true,
						Labels: map[string]string{"team": "b", "owner": "a"}, LastUsedAt: &t0},
					{Name: "mobile", CreatedAt: t0, Previous: &client.KeyGeneration{CreatedAt: t0, ExpiresAt: &t0}},
					{Name: "metered", CreatedAt: t0, Rate: "10/s", Burst: "20", Budget: "1000/day"},
				})
			},
			want: "" +
				"NAME       CREATED              STATUS                                    SCOPES              EXPIRES              LAST USED            RATE             BUDGET    LABELS\n" +
				"ci         2025-03-04 05:06:07  active                                    all                 -                    -                    -                -         -\n" +
				"old-phone  2025-03-04 05:06:07  revoked                                   all                 -                    -                    -                -         -\n" +
				"diary      2025-03-04 05:06:07  expired                                   diary,photos/thumb  2025-03-04 05:06:07  2025-03-04 05:06:07  -                -         owner=a,team=b\n" +
				"mobile     2025-03-04 05:06:07  rotating (old until 2025-03-04 05:06:07)  all                 -                    -                    -                -         -\n" +
				"metered    2025-03-04 05:06:07  active                                    all                 -                    -                    10/s (burst 20)  1000/day  -\n",
		},
		{
			name: "dead letters, error kept on one line",
			write: func(b *bytes.Buffer) error {
				return writeDeadLetters(b, formatTable, []client.DeadLetter{
					{ID: 42, App: "d", Function: "thumb", Topic: "image.saved", Error: "trap:\n  out of bounds", Attempts: 3, Time: t0},
				})
			},
			want: "" +
				"ID  APP  FUNCTION  TOPIC        ATTEMPTS  TIME                 ERROR\n" +
				"42  d    thumb     image.saved  3         2025-03-04 05:06:07  trap: out of bounds\n",
		},
		{
			name: "artifacts",
			write: func(b *bytes.Buffer) error {
				return writeArtifacts(b, formatTable, []build.Artifact{{Function: "save", Path: "/p/save.wasm", SHA256: sum, Size: 2048}})
			},
			want: "" +
				"FUNCTION  SIZE  SHA256        PATH\n" +
				"save      2048  abababababab  /p/save.wasm\n",
		},
		{
			name:  "empty list prints the header",
			write: func(b *bytes.Buffer) error { return writeKeys(b, formatTable, nil) },
			want:  "NAME  CREATED  STATUS  SCOPES  EXPIRES  LAST USED  RATE  BUDGET  LABELS\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeRoutes(&b, formatJSON, nil); err != nil {
		t.Fatal(err)
	}
	if b.String() != "[]\n" {
		t.Errorf("empty list as JSON = %q, want []", b.String())
	}

	b.Reset()
	keys := []client.Key{{Name: "ci", CreatedAt: t0}}
	if err := writeKeys(&b, formatJSON, keys); err != nil {
		t.Fatal(err)
	}
	want := "[\n  {\n    \"name\": \"ci\",\n    \"created_at\": \"2025-03-04T05:06:07Z\",\n    \"revoked\": false\n  }\n]\n"
	if b.String() != want {
		t.Errorf("keys as JSON =\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	if err := writeArtifacts(&b, formatJSON, []build.Artifact{{Function: "f", Path: "/f.wasm", SHA256: "00", Size: 8}}); err != nil {
		t.Fatal(err)
	}
	var arts []map[string]any
	if err := json.Unmarshal(b.Bytes(), &arts); err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0]["function"] != "f" || arts[0]["sha256"] != "00" || arts[0]["size"] != 8.0 || arts[0]["path"] != "/f.wasm" {
		t.Errorf("artifacts as JSON = %s", b.String())
	}
}

func TestLogRecordText(t *testing.T) {
	pinLocalTime(t)
	tests := []struct {
		rec  client.LogRecord
		want string
	}{
		{
			rec: client.LogRecord{Time: t0, Level: "INFO", Msg: "invoked", App: "d", Function: "save", RequestID: "r1",
				Attrs: map[string]any{"status": 200.0, "trigger": "http", "error": "two words"}},
			want: `2025-03-04 05:06:07.000 INFO  d/save invoked error="two words" status=200 trigger=http request_id=r1` + "\n",
		},
		{
			// A denial reads as a sentence: what, on what, why.
			rec: client.LogRecord{Time: t0, Level: "warn", Msg: "capability denied", App: "hello", Function: "greet", RequestID: "r2",
				Attrs: map[string]any{"version": "v1", "reason": "no kv grant", "resource": "greetings/last", "capability": "kv.put"}},
			want: `2025-03-04 05:06:07.000 warn  hello/greet capability denied capability=kv.put resource=greetings/last reason="no kv grant" version=v1 request_id=r2` + "\n",
		},
		{
			rec: client.LogRecord{Time: t0, Level: "error", Msg: "invocation failed", App: "d", Function: "save", RequestID: "r3",
				Attrs: map[string]any{"duration_ms": 3.5, "error": "function failed: could not save", "reason": "function error", "trigger": "http"}},
			want: `2025-03-04 05:06:07.000 error d/save invocation failed reason="function error" error="function failed: could not save" duration_ms=3.5 trigger=http request_id=r3` + "\n",
		},
		{
			rec:  client.LogRecord{Time: t0, Level: "WARN", Msg: "platform"},
			want: "2025-03-04 05:06:07.000 WARN  platform\n",
		},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := writeLogRecord(&b, formatTable, tt.rec); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("got  %q\nwant %q", b.String(), tt.want)
		}
	}

	var b bytes.Buffer
	if err := writeLogRecord(&b, formatJSON, tests[0].rec); err != nil {
		t.Fatal(err)
	}
	want := `{"app":"d","error":"two words","function":"save","level":"INFO","msg":"invoked","request_id":"r1","status":200,"time":"2025-03-04T05:06:07Z","trigger":"http"}` + "\n"
	if b.String() != want {
		t.Errorf("got  %s\nwant %s", b.String(), want)
	}
}

func TestCurlCommand(t *testing.T) {
	routes := []client.Route{
		{Method: "POST", Path: "/entries", App: "d"},
		{Method: "GET", Path: "/entries/{id}", App: "d"},
		{Method: "GET", Path: "/other", App: "other"},
	}
	// A POST whose schema has an example creates something, and works as
	// printed: it comes first.
	examples := map[string]string{"POST /entries": `{"title":"it's me"}`}
	got := curlCommand("http://127.0.0.1:8080/", "", "KEY", "d", routes, examples)
	want := `curl -X POST -H 'Authorization: Bearer KEY' -H 'Content-Type: application/json' -d '{"title":"it'\''s me"}' http://127.0.0.1:8080/entries`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Without an example, a GET; one without path parameters before one with.
	got = curlCommand("http://127.0.0.1:8080/", "", "KEY", "d", append(routes, client.Route{Method: "GET", Path: "/entries", App: "d"}), nil)
	want = "curl -H 'Authorization: Bearer KEY' http://127.0.0.1:8080/entries"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = curlCommand("http://127.0.0.1:8080/", "", "KEY", "d", routes, nil)
	want = "curl -H 'Authorization: Bearer KEY' 'http://127.0.0.1:8080/entries/{id}'"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = curlCommand("http://h", "", "KEY", "d", routes[:1], nil)
	want = "curl -X POST -H 'Authorization: Bearer KEY' -H 'Content-Type: application/json' -d '{}' http://h/entries"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = curlCommand("http://h", "", "KEY", "d", []client.Route{{Method: "GET", Path: "/ping", App: "d", Public: true}}, nil)
	if want := "curl http://h/ping"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = curlCommand("https://h", "dir/.aegis/tls/cert.pem", "KEY", "d", []client.Route{{Method: "GET", Path: "/ping", App: "d", Public: true}}, nil)
	if want := "curl --cacert dir/.aegis/tls/cert.pem https://h/ping"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := curlCommand("http://h", "", "KEY", "none", routes, examples); got != "" {
		t.Errorf("app without routes: got %q, want empty", got)
	}
	private := []client.Route{{Method: "GET", Path: "/internal", App: "d", Private: true}, {Method: "POST", Path: "/entries", App: "d"}}
	if got := curlCommand("http://h", "", "KEY", "d", private, nil); strings.Contains(got, "/internal") {
		t.Errorf("suggests a private route, which answers 404 from outside: %s", got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"examples/app/.aegis": "examples/app/.aegis",
		"my dir":              "'my dir'",
		"it's":                `'it'\''s'`,
		"":                    "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRouteExamples(t *testing.T) {
	got := routeExamples("../../examples/travel-diary/aegis.yaml")
	if ex := got["POST /entries"]; !strings.HasPrefix(ex, `{"title":"First day",`) {
		t.Errorf("POST /entries example = %q", ex)
	}
	if len(got) != 1 {
		t.Errorf("examples for %d routes, want 1: %v", len(got), got)
	}
	if got := routeExamples("no/such/aegis.yaml"); len(got) != 0 {
		t.Errorf("missing manifest: %v", got)
	}
}
