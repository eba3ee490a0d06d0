package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// testCacheDir is shared by the tests' engines across runs, so the Go
// fixtures (several MB each) are compiled to machine code once, not once
// per test. TestCompileCacheDir uses its own directory.
func testCacheDir() string { return filepath.Join(os.TempDir(), "aegis-sandbox-test-cache") }

type testEnv struct {
	engine *Engine
	host   *recorder
	logs   *logbuf.Buffer
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	env := &testEnv{host: newRecorder(), logs: logbuf.New()}
	logger := slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(context.Background(), Config{CacheDir: testCacheDir(), Host: env.host, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	env.engine = e
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return env
}

// goFunction builds, compiles and deploys a Go fixture from testdata.
func (env *testEnv) goFunction(t testing.TB, fixture string, cfg FunctionConfig) *Function {
	t.Helper()
	return env.function(t, wasmbuild.GoModule(t, filepath.Join("testdata", fixture)), cfg)
}

func (env *testEnv) function(t testing.TB, wasm []byte, cfg FunctionConfig) *Function {
	t.Helper()
	ctx := context.Background()
	m, err := env.engine.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.App == "" {
		cfg.App, cfg.Function, cfg.Version = "app", "fn", "v1"
	}
	f, err := env.engine.NewFunction(ctx, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(ctx) })
	return f
}

func httpReq(path string, body string) *Request {
	return &Request{Kind: KindHTTP, RequestID: "req-" + path, Method: "POST", Path: path, Body: []byte(body)}
}

func mustInvoke(t testing.TB, f *Function, req *Request) *Response {
	t.Helper()
	resp, err := f.Invoke(context.Background(), req)
	if err != nil {
		t.Fatalf("invoke %s: %v", req.Path, err)
	}
	return resp
}

func requireErrorIs(t testing.TB, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %v does not match %v", err, target)
		}
	}
}

// recorder is a Host test double: in-memory kv and objects, recording
// every call. Table "secret" is never granted, and table "boom" fails with
// an internal error whose text must not reach the guest.
type recorder struct {
	mu        sync.Mutex
	kv        map[string][]byte
	objects   map[string][]byte
	published []string
	fetches   []*FetchRequest
	invokes   []*InvokeRequest
	logs      []logLine
	callers   []Caller
}

type logLine struct {
	Level     slog.Level
	Msg       string
	RequestID string
}

func newRecorder() *recorder {
	return &recorder{kv: map[string][]byte{}, objects: map[string][]byte{}}
}

func (r *recorder) enter(c *Caller) {
	r.mu.Lock()
	r.callers = append(r.callers, *c)
}

func (r *recorder) KVGet(_ context.Context, c *Caller, table, key string) ([]byte, error) {
	r.enter(c)
	defer r.mu.Unlock()
	switch table {
	case "secret":
		return nil, fmt.Errorf("kv get %s/%s: %w", table, key, aegis.ErrPermissionDenied)
	case "boom":
		return nil, errors.New("nats: dial 10.0.0.7:4222: connection refused")
	}
	v, ok := r.kv[table+"/"+key]
	if !ok {
		return nil, fmt.Errorf("kv get %s/%s: %w", table, key, aegis.ErrNotFound)
	}
	return v, nil
}

func (r *recorder) KVPut(_ context.Context, c *Caller, table, key string, value []byte) error {
	r.enter(c)
	defer r.mu.Unlock()
	r.kv[table+"/"+key] = value
	return nil
}

func (r *recorder) KVDelete(_ context.Context, c *Caller, table, key string) error {
	r.enter(c)
	defer r.mu.Unlock()
	delete(r.kv, table+"/"+key)
	return nil
}

func (r *recorder) KVList(_ context.Context, c *Caller, table, prefix string) ([]string, error) {
	r.enter(c)
	defer r.mu.Unlock()
	var keys []string
	for k := range r.kv {
		if rest, ok := strings.CutPrefix(k, table+"/"); ok && strings.HasPrefix(rest, prefix) {
			keys = append(keys, rest)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (r *recorder) ObjectGet(_ context.Context, c *Caller, key string) ([]byte, error) {
	r.enter(c)
	defer r.mu.Unlock()
	v, ok := r.objects[key]
	if !ok {
		return nil, aegis.ErrNotFound
	}
	return v, nil
}

func (r *recorder) ObjectPut(_ context.Context, c *Caller, key string, data []byte) error {
	r.enter(c)
	defer r.mu.Unlock()
	r.objects[key] = data
	return nil
}

func (r *recorder) ObjectDelete(_ context.Context, c *Caller, key string) error {
	r.enter(c)
	defer r.mu.Unlock()
	delete(r.objects, key)
	return nil
}

func (r *recorder) ObjectList(_ context.Context, c *Caller, prefix string) ([]string, error) {
	r.enter(c)
	defer r.mu.Unlock()
	var keys []string
	for k := range r.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (r *recorder) Publish(_ context.Context, c *Caller, topic string, data []byte) error {
	r.enter(c)
	defer r.mu.Unlock()
	r.published = append(r.published, topic+":"+string(data))
	return nil
}

func (r *recorder) Fetch(_ context.Context, c *Caller, req *FetchRequest) (*FetchResponse, error) {
	r.enter(c)
	defer r.mu.Unlock()
	r.fetches = append(r.fetches, req)
	if strings.Contains(req.URL, "forbidden") {
		return nil, fmt.Errorf("egress to %s not granted: %w", req.URL, aegis.ErrPermissionDenied)
	}
	return &FetchResponse{Status: 201, Headers: map[string]string{"X-Up": "1"}, Body: append([]byte("pong:"), req.Body...)}, nil
}

// Invoke answers 203 with the path and body it was given; path "/nope"
// is not granted.
func (r *recorder) Invoke(_ context.Context, c *Caller, req *InvokeRequest) (*InvokeResponse, error) {
	r.enter(c)
	defer r.mu.Unlock()
	r.invokes = append(r.invokes, req)
	if req.Path == "/nope" {
		return nil, fmt.Errorf("invoke of function %q not granted: %w", "nope", aegis.ErrPermissionDenied)
	}
	return &InvokeResponse{Status: 203, Headers: map[string]string{"X-Callee": "back"},
		Body: append([]byte(req.Method+" "+req.Path+":"), req.Body...)}, nil
}

// Secret answers the secrets of recorderSecrets; "denied" is never
// granted.
func (r *recorder) Secret(_ context.Context, c *Caller, name string) ([]byte, error) {
	r.enter(c)
	defer r.mu.Unlock()
	if name == "denied" {
		return nil, fmt.Errorf("secret %q not granted: %w", name, aegis.ErrPermissionDenied)
	}
	v, ok := recorderSecrets[name]
	if !ok {
		return nil, fmt.Errorf("secret %q: %w", name, aegis.ErrNotFound)
	}
	return []byte(v), nil
}

var recorderSecrets = map[string]string{
	"TOKEN": "tok-Zq8#s3cr3t/v+1",
	"SHORT": "abc",
	"PEM":   "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----",
}

func (r *recorder) Log(_ context.Context, c *Caller, level slog.Level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, logLine{Level: level, Msg: msg, RequestID: c.RequestID})
}

func (r *recorder) logLines() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.logs)
}
