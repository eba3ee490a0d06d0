// Command invoker is the end-to-end fixture of private routes and the
// invoke capability. Every function of testdata/private.yaml runs it; what
// it does depends on the {op} of the route it is called on:
//
//	call    invoke the route the body describes and report what came back
//	whoami  report the request as this function received it
//	loop    invoke the peer's loop (ping ↔ pong) until the platform stops it
//	big     answer more than the callee's max_response
//	sleep   hold the instance for a while
//
// An admin invoke has no {op}: a body "sleep:<nonce>" sleeps (logging
// "holding <nonce>" first), anything else is whoami.
package main

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// spec is the body of a "call": the request to invoke.
type spec struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// report is what "call" and "loop" answer about one invoke.
type report struct {
	OK      bool              `json:"ok"`
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	Kind    string            `json:"kind,omitempty"` // which SDK sentinel the error matched
	Error   string            `json:"error,omitempty"`
	Hop     int               `json:"hop"` // of the function that made the call
}

func kind(err error) string {
	for _, k := range []struct {
		name string
		err  error
	}{
		{"permission_denied", aegis.ErrPermissionDenied},
		{"not_found", aegis.ErrNotFound},
		{"invalid_argument", aegis.ErrInvalidArgument},
		{"limit_exceeded", aegis.ErrLimitExceeded},
		{"unavailable", aegis.ErrUnavailable},
		{"internal", aegis.ErrInternal},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

func invoke(r *aegis.Request, req *aegis.InvokeRequest) report {
	resp, err := aegis.Invoke(req)
	if err != nil {
		return report{Kind: kind(err), Error: err.Error(), Hop: r.Hop}
	}
	return report{OK: true, Status: resp.Status, Headers: resp.Headers, Body: string(resp.Body), Hop: r.Hop}
}

func whoami(r *aegis.Request) *aegis.Response {
	resp := aegis.JSON(203, map[string]any{
		"identity": r.Identity, "request_id": r.RequestID, "hop": r.Hop,
		"method": r.Method, "path": r.Path, "params": r.Params, "query": r.Query,
		"headers": r.Header, "body": string(r.Body),
	})
	resp.Header["X-Back"] = "seen"
	return resp
}

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		switch r.Params["op"] {
		case "call":
			var s spec
			if err := json.Unmarshal(r.Body, &s); err != nil {
				return aegis.Error(400, "bad spec: "+err.Error())
			}
			var body []byte
			if s.Body != "" {
				body = []byte(s.Body)
			}
			return aegis.JSON(200, invoke(r, &aegis.InvokeRequest{Method: s.Method, Path: s.Path, Headers: s.Headers, Body: body}))
		case "loop":
			next := "/private-e2e/ping/loop"
			if strings.Contains(r.Path, "/ping/") {
				next = "/private-e2e/pong/loop"
			}
			rep := invoke(r, &aegis.InvokeRequest{Method: "POST", Path: next})
			if rep.OK {
				// The deepest report travels back up unchanged.
				return &aegis.Response{Status: 200, Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(rep.Body)}
			}
			return aegis.JSON(200, rep)
		case "big":
			return &aegis.Response{Status: 200, Body: make([]byte, 100<<10)}
		case "sleep":
			time.Sleep(6 * time.Second)
			return aegis.Text(200, "slept")
		case "":
			if nonce, ok := strings.CutPrefix(string(r.Body), "sleep:"); ok {
				aegis.Log("info", "holding "+nonce)
				time.Sleep(6 * time.Second)
				return aegis.Text(200, "slept")
			}
			return whoami(r)
		default:
			return whoami(r)
		}
	})
}

func main() {}
