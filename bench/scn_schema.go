package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/internal/schema"
)

// Scenario 9: what checking a request against a JSON Schema adds. The check
// alone is timed against decoding the same body with encoding/json (what
// a handler does with it anyway); then, end to end, the same echo function
// answers two routes of one app, one with a body schema and one without,
// timed alternately over loopback, one request after the other.
func init() {
	register(Scenario{ID: 9, Name: "request validation: echo with a body schema vs without", Run: runSchema})
}

// schemaEchoManifest gives examples/echo a second route whose body must be
// an object holding one short string "message" and nothing else.
const schemaEchoManifest = `app: echo
functions:
  echo:
    source: .
    triggers:
      - http: { method: POST, path: /echo, auth: [api-key] }
      - http: { method: POST, path: /echo-checked, auth: [api-key], schema: { body: message.json } }
    limits: { timeout: 1s, memory: 64MiB, concurrency: 100, max_body: 64KiB, max_response: 64KiB }
`

const messageSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["message"],
  "properties": { "message": { "type": "string", "minLength": 1, "maxLength": 1024 } }
}`

func runSchema(ctx context.Context, env *Env) ([]*Result, error) {
	check, err := runSchemaCheck(env)
	if err != nil {
		return nil, err
	}
	e2e, err := runSchemaEndToEnd(ctx, env)
	if err != nil {
		return []*Result{check}, err
	}
	return []*Result{check, e2e}, nil
}

// runSchemaCheck times schema.Request.Check of the echo body (content type,
// JSON parse, validation) against json.Unmarshal of it into a struct.
func runSchemaCheck(env *Env) (*Result, error) {
	compiled, err := schema.Compile(map[string][]byte{"message.json": []byte(messageSchema)}, "message.json")
	if err != nil {
		return nil, err
	}
	req := schema.NewRequest([]string{"application/json"}, compiled["message.json"], nil, nil)
	body := []byte(echoRequestBody)
	budget := 200 * time.Millisecond
	if env.Quick {
		budget = 20 * time.Millisecond
	}
	decode, err := calibrate(budget, func() error {
		var m struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Message == "" {
			return errors.New("echo body does not decode")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	checking, err := calibrate(budget, func() error { return req.Check("application/json", nil, nil, body) })
	if err != nil {
		return nil, err
	}
	b, s, samples, err := Alternate(env.Rounds, decode.nsPerOp, checking.nsPerOp)
	if err != nil {
		return nil, err
	}
	r := ratioResult("schema check of the echo body", "ns/op", "json.Unmarshal of it", b, s, samples)
	r.RatioNote = "check / decode"
	r.Notes = "content type, JSON parse and validation of a 45-byte body against a one-property schema"
	return r, nil
}

// runSchemaEndToEnd times the same echo request with and without a body
// schema on its route.
func runSchemaEndToEnd(ctx context.Context, env *Env) (*Result, error) {
	calls := 1500
	if env.Quick {
		calls = 40
	}
	wasm, _, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	in, err := env.StartServer(ctx, "")
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if _, err := in.DeployWithSchemas(ctx, "echo", schemaEchoManifest, map[string]string{"message.json": messageSchema}, wasm, "echo"); err != nil {
		return nil, fmt.Errorf("deploy echo with a schema: %w", err)
	}
	key, err := in.Key(ctx, "bench")
	if err != nil {
		return nil, err
	}
	hc := newBenchClient()
	base := strings.TrimSuffix(in.Gateway, "/")
	plain := func() error { _, err := echoPost(ctx, hc, base+"/echo", key); return err }
	checked := func() error { _, err := echoPost(ctx, hc, base+"/echo-checked", key); return err }
	b, s, samples, err := alternateWarm(env.Rounds, calls, plain, checked)
	if err != nil {
		return nil, err
	}
	r := ratioResult("echo median latency, body schema", "µs", "same function, no schema", b, s, samples)
	r.RatioNote = "with / without"
	r.Target = "≤ 1.10"
	r.Met = Met(r.Ratio <= 1.10)
	r.Notes = fmt.Sprintf("median of %d sequential requests per round; the checked route also verifies the content type and parses the body as JSON before the schema runs", calls)
	return r, nil
}
