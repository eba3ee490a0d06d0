package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestErrorHygiene provokes every kind of error answer the gateway and the
// admin API give and checks each the same way: the sanitized JSON shape
// with nothing internal in it (errorBody), the X-Request-Id header equal to
// the body's request_id, and, for failures on our side, a log line under
// that id so the answer can be joined to what happened.
func TestErrorHygiene(t *testing.T) {
	in, key := sharedServer(t)
	adminToken := in.srv.AdminToken()

	type attempt struct {
		name    string
		base    string // in.gateway or the admin URL
		method  string
		path    string
		token   string
		body    []byte
		status  int
		logHint string // for 5xx: a log message the request id must appear under
	}
	admin := in.srv.AdminURL()
	tests := []attempt{
		{"unknown route", in.gateway, "GET", "/no/such/route", key, nil, http.StatusNotFound, ""},
		{"wrong method", in.gateway, "DELETE", "/probe/echo", key, nil, http.StatusMethodNotAllowed, ""},
		{"no credentials", in.gateway, "POST", "/probe/echo", "", []byte("x"), http.StatusUnauthorized, ""},
		{"body too large", in.gateway, "POST", "/small/echo", key, bytes.Repeat([]byte("x"), 4<<10), http.StatusRequestEntityTooLarge, ""},
		{"function panics", in.gateway, "POST", "/probe/panic", key, []byte("{}"), http.StatusInternalServerError, "invocation failed"},
		{"function times out", in.gateway, "POST", "/slow/sleep", key, []byte(`{"size":2000}`), http.StatusGatewayTimeout, "invocation failed"},
		{"admin without token", admin, "GET", "/v1/apps", "", nil, http.StatusUnauthorized, ""},
		{"admin bad JSON", admin, "POST", "/v1/keys", adminToken, []byte("{not json"), http.StatusBadRequest, ""},
		{"admin unknown fields", admin, "POST", "/v1/keys", adminToken, []byte(`{"name":"x","sudo":true}`), http.StatusBadRequest, ""},
		{"admin body too large", admin, "POST", "/v1/keys", adminToken, append([]byte(`{"name":"`), bytes.Repeat([]byte("x"), 3<<20)...), http.StatusRequestEntityTooLarge, ""},
		{"admin bad module hash", admin, "PUT", "/v1/modules/not-a-hash", adminToken, []byte("\x00asm\x01\x00\x00\x00"), http.StatusBadRequest, ""},
		{"admin unknown dead letter", admin, "POST", "/v1/dlq/999999/replay", adminToken, nil, http.StatusNotFound, ""},
		{"admin unknown function", admin, "POST", "/v1/apps/probe/functions/nope/invoke", adminToken, []byte("{}"), http.StatusNotFound, ""},
		{"admin manifest for nothing", admin, "POST", "/v1/apps/ghost/deploy", adminToken, []byte(`{"manifest":"app: ghost\nfunctions: {}\n"}`), http.StatusBadRequest, ""},
	}
	// A manifest error is answered as the manifest's own message, without
	// our wrapping around it.
	wantMsg := map[string]string{"admin manifest for nothing": "aegis.yaml:2: functions: at least one function is required"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *bytes.Reader
			if tt.body != nil {
				r = bytes.NewReader(tt.body)
			} else {
				r = bytes.NewReader(nil)
			}
			req, err := http.NewRequest(tt.method, tt.base+tt.path, r)
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, buf.Bytes())
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			msg, id := errorBody(t, buf.Bytes())
			if want := wantMsg[tt.name]; want != "" && msg != want {
				t.Errorf("message %q, want %q", msg, want)
			}
			if hdr := resp.Header.Get("X-Request-Id"); hdr != id {
				t.Errorf("X-Request-Id %q differs from the body's request_id %q", hdr, id)
			}
			for _, leak := range []string{in.dataDir, "runtime error", "stack", "0x", "yaml: line", "json: ", "cel"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message %q contains %q", msg, leak)
				}
			}
			if tt.logHint != "" {
				eventually(t, 10*time.Second, "log line under "+id, func() bool { return len(in.logs.Lines(tt.logHint, id)) > 0 })
			}
		})
	}
}

// TestFailuresAnswerAlikeEverywhere: a function's failure gets the same
// status and message whether it was called through the gateway or the
// admin API's invoke (both map errors through httperr). Before they shared
// the mapping, the admin API answered 500 where the gateway answered 503.
func TestFailuresAnswerAlikeEverywhere(t *testing.T) {
	in, key := sharedServer(t)
	admin, token := in.srv.AdminURL(), in.srv.AdminToken()
	for _, tt := range []struct {
		name, fn, op string
		body         string // to the gateway; the admin invoke adds "op"
		adminBody    string
		status       int
		msg          string
	}{
		{"panic", "probe", "panic", `{}`, `{"op":"panic"}`, http.StatusInternalServerError, "function failed"},
		{"timeout", "slow", "sleep", `{"size":2000}`, `{"op":"sleep","size":2000}`, http.StatusGatewayTimeout, "function timed out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := call(t, in.gateway, "POST", "/"+tt.fn+"/"+tt.op, key, tt.body)
			gwMsg, _ := errorBody(t, body)
			ast, abody, _ := call(t, admin, "POST", "/v1/apps/probe/functions/"+tt.fn+"/invoke", token, tt.adminBody)
			adminMsg, _ := errorBody(t, abody)
			if st != tt.status || gwMsg != tt.msg {
				t.Errorf("gateway: %d %q, want %d %q", st, gwMsg, tt.status, tt.msg)
			}
			if ast != st || adminMsg != gwMsg {
				t.Errorf("admin invoke: %d %q, gateway: %d %q", ast, adminMsg, st, gwMsg)
			}
		})
	}
}
