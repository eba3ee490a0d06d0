package capability

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/manifest"
)

// In-memory fakes of the consumer-side interfaces. They record what reached
// them so a test can tell a denied call never touched the store.

type memTables struct {
	mu    sync.Mutex
	m     map[string][]byte
	calls int
}

func (s *memTables) Get(_ context.Context, app, table, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	v, ok := s.m[app+"/"+table+"/"+key]
	if !ok {
		return nil, aegis.ErrNotFound
	}
	return v, nil
}

func (s *memTables) Put(_ context.Context, app, table, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[app+"/"+table+"/"+key] = v
	return nil
}

func (s *memTables) Delete(_ context.Context, app, table, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	delete(s.m, app+"/"+table+"/"+key)
	return nil
}

func (s *memTables) Keys(_ context.Context, app, table, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var out []string
	p := app + "/" + table + "/"
	for k := range s.m {
		if rest, ok := strings.CutPrefix(k, p); ok && strings.HasPrefix(rest, prefix) {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out, nil
}

type memObjects struct {
	mu    sync.Mutex
	m     map[string][]byte
	keys  []string // every key handed to the store, to check normalization
	calls int
}

func (s *memObjects) record(key string) {
	s.calls++
	s.keys = append(s.keys, key)
}

func (s *memObjects) Get(_ context.Context, app, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(key)
	v, ok := s.m[app+"/"+key]
	if !ok {
		return nil, aegis.ErrNotFound
	}
	return v, nil
}

func (s *memObjects) Put(_ context.Context, c *sandbox.Caller, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(key)
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[c.App+"/"+key] = data
	return nil
}

func (s *memObjects) Delete(_ context.Context, c *sandbox.Caller, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(key)
	delete(s.m, c.App+"/"+key)
	return nil
}

func (s *memObjects) List(_ context.Context, app, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(prefix)
	var out []string
	for k := range s.m {
		if rest, ok := strings.CutPrefix(k, app+"/"); ok && strings.HasPrefix(rest, prefix) {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out, nil
}

type memEvents struct {
	mu     sync.Mutex
	topics []string
}

func (e *memEvents) Publish(_ context.Context, _ *sandbox.Caller, topic string, _ []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topics = append(e.topics, topic)
	return nil
}

type memLogs struct {
	mu      sync.Mutex
	msgs    []string
	denials []string // "capability resource reason"
}

func (l *memLogs) FunctionDenied(_ context.Context, _ *sandbox.Caller, capability, resource, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.denials = append(l.denials, capability+" "+resource+" "+reason)
}

func (l *memLogs) FunctionLog(_ context.Context, _ *sandbox.Caller, _ slog.Level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
}

// security returns the capability's denial lines.
func security(logs *logbuf.Buffer) []map[string]any { return logs.Messages("capability denied") }

type harness struct {
	host    *Host
	logs    *logbuf.Buffer
	tables  *memTables
	objects *memObjects
	events  *memEvents
	flogs   *memLogs
}

func newHarness(t *testing.T, modify func(*Config)) *harness {
	t.Helper()
	hs := &harness{logs: logbuf.New(), tables: &memTables{}, objects: &memObjects{}, events: &memEvents{}, flogs: &memLogs{}}
	cfg := Config{
		Tables: hs.tables, Objects: hs.objects, Events: hs.events, Logs: hs.flogs,
		Logger: slog.New(slog.NewJSONHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Tests never reach the network: any fetch test that forgets its own
		// resolver or dialer fails here instead of sending packets.
		Resolver: refuseResolver{t},
		Dial:     refuseDial(t),
	}
	if modify != nil {
		modify(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs.host = h
	return hs
}

// caller is what the sandbox hands a host call: the grants and, parsed as
// the sandbox parses them when it builds a function, the egress patterns.
// A test grant that does not parse is a bug in the test.
func caller(g manifest.Grants) *sandbox.Caller {
	egress, err := g.Egress.Patterns()
	if err != nil {
		panic(err)
	}
	return &sandbox.Caller{App: "diary", Function: "save-entry", Version: "v3", RequestID: "req-0123456789", Grants: &g, Egress: egress}
}

func requireErrorIs(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want one wrapping %v", err, want)
	}
}

// requireOneDenial checks the single security line written for a denial.
func requireOneDenial(t *testing.T, logs *logbuf.Buffer, capability, resource string) {
	t.Helper()
	lines := security(logs)
	if len(lines) != 1 {
		t.Fatalf("got %d security log lines, want 1:\n%s", len(lines), logs.String())
	}
	l := lines[0]
	want := map[string]any{
		"level": "WARN", logkey.Security: true, logkey.App: "diary", logkey.Function: "save-entry",
		logkey.Version: "v3", logkey.RequestID: "req-0123456789", logkey.Capability: capability,
	}
	if resource != "" {
		want[logkey.Resource] = resource
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("security log %s = %v, want %v (line %v)", k, l[k], v, l)
		}
	}
}

func TestNewRequiresLogger(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Logger succeeded")
	}
	if _, err := New(Config{Logger: slog.New(slog.DiscardHandler), FetchTimeout: -1}); err == nil {
		t.Fatal("New with a negative limit succeeded")
	}
}

// TestGrants runs every capability without and with its grant: a denial
// wraps ErrPermissionDenied, never reaches the backend and writes exactly
// one security log line; an allowed call writes none.
func TestGrants(t *testing.T) {
	type op func(context.Context, *Host, *sandbox.Caller) error
	kvGet := func(table, key string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			_, err := h.KVGet(ctx, c, table, key)
			if errors.Is(err, aegis.ErrNotFound) {
				return nil // allowed; the key just is not there
			}
			return err
		}
	}
	kvPut := func(table, key string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			return h.KVPut(ctx, c, table, key, []byte("v"))
		}
	}
	kvDelete := func(table, key string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error { return h.KVDelete(ctx, c, table, key) }
	}
	kvList := func(table, prefix string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			_, err := h.KVList(ctx, c, table, prefix)
			return err
		}
	}
	objGet := func(key string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			_, err := h.ObjectGet(ctx, c, key)
			if errors.Is(err, aegis.ErrNotFound) {
				return nil
			}
			return err
		}
	}
	objPut := func(key string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			return h.ObjectPut(ctx, c, key, []byte("x"))
		}
	}
	objDelete := func(key string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error { return h.ObjectDelete(ctx, c, key) }
	}
	objList := func(prefix string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			_, err := h.ObjectList(ctx, c, prefix)
			return err
		}
	}
	publish := func(topic string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			return h.Publish(ctx, c, topic, []byte("{}"))
		}
	}
	fetch := func(url string) op {
		return func(ctx context.Context, h *Host, c *sandbox.Caller) error {
			_, err := h.Fetch(ctx, c, &sandbox.FetchRequest{URL: url})
			return err
		}
	}
	kv := func(read, write []string) manifest.Grants {
		return manifest.Grants{KV: manifest.ReadWrite{Read: read, Write: write}}
	}
	obj := func(read, write []string) manifest.Grants {
		return manifest.Grants{Objects: manifest.ReadWrite{Read: read, Write: write}}
	}
	l := func(s ...string) []string { return s }

	tests := []struct {
		name       string
		grants     manifest.Grants
		op         op
		denied     bool
		capability string
		resource   string
	}{
		{"kv get without grant", manifest.Grants{}, kvGet("entries", "k1"), true, "kv.get", "entries/k1"},
		{"kv get other table", kv(l("notes"), nil), kvGet("entries", "k1"), true, "kv.get", "entries/k1"},
		{"kv get with read", kv(l("entries"), nil), kvGet("entries", "k1"), false, "", ""},
		{"kv get with write", kv(nil, l("entries")), kvGet("entries", "k1"), false, "", ""},
		{"kv get with prefix pattern", kv(l("ent*"), nil), kvGet("entries", "k1"), false, "", ""},
		{"kv get with star", kv(l("*"), nil), kvGet("entries", "k1"), false, "", ""},
		{"kv put without grant", manifest.Grants{}, kvPut("secrets", "k1"), true, "kv.put", "secrets/k1"},
		{"kv put with read only", kv(l("secrets"), nil), kvPut("secrets", "k1"), true, "kv.put", "secrets/k1"},
		{"kv put with write", kv(nil, l("secrets")), kvPut("secrets", "k1"), false, "", ""},
		{"kv delete with read only", kv(l("entries"), nil), kvDelete("entries", "k1"), true, "kv.delete", "entries/k1"},
		{"kv delete with write", kv(nil, l("entries")), kvDelete("entries", "k1"), false, "", ""},
		{"kv list without grant", manifest.Grants{}, kvList("entries", "2024/"), true, "kv.list", "entries/2024/*"},
		{"kv list with read", kv(l("entries"), nil), kvList("entries", ""), false, "", ""},
		{"kv list with write", kv(nil, l("entries")), kvList("entries", "2024/"), false, "", ""},

		{"object get without grant", manifest.Grants{}, objGet("images/a.png"), true, "objects.get", "images/a.png"},
		{"object get outside prefix", obj(l("images/*"), nil), objGet("thumbs/a.png"), true, "objects.get", "thumbs/a.png"},
		{"object get with read", obj(l("images/*"), nil), objGet("images/a.png"), false, "", ""},
		{"object get with write", obj(nil, l("images/*")), objGet("images/a.png"), false, "", ""},
		{"object get exact", obj(l("cfg.json"), nil), objGet("cfg.json"), false, "", ""},
		{"object get normalized into grant", obj(l("images/*"), nil), objGet("./images//a.png"), false, "", ""},
		{"object put with read only", obj(l("images/*"), nil), objPut("images/a.png"), true, "objects.put", "images/a.png"},
		{"object put with write", obj(nil, l("images/*")), objPut("images/a.png"), false, "", ""},
		{"object delete with read only", obj(l("images/*"), nil), objDelete("images/a.png"), true, "objects.delete", "images/a.png"},
		{"object delete with write", obj(nil, l("images/*")), objDelete("images/a.png"), false, "", ""},
		{"object list without grant", manifest.Grants{}, objList("images/"), true, "objects.list", "images/*"},
		{"object list all with prefix grant", obj(l("images/*"), nil), objList(""), true, "objects.list", "*"},
		{"object list wider than grant", obj(l("images/*"), nil), objList("imag"), true, "objects.list", "imag*"},
		{"object list on exact grant", obj(l("images/a"), nil), objList("images/a"), true, "objects.list", "images/a*"},
		{"object list inside grant", obj(l("images/*"), nil), objList("images/2024/"), false, "", ""},
		{"object list grant prefix itself", obj(nil, l("images/*")), objList("images/"), false, "", ""},
		{"object list all with star", obj(l("*"), nil), objList(""), false, "", ""},

		{"publish without grant", manifest.Grants{}, publish("image.saved"), true, "events.publish", "image.saved"},
		{"publish other topic", manifest.Grants{Events: manifest.EventGrants{Publish: l("image.saved")}}, publish("image.deleted"), true, "events.publish", "image.deleted"},
		{"publish with grant", manifest.Grants{Events: manifest.EventGrants{Publish: l("image.saved")}}, publish("image.saved"), false, "", ""},
		{"publish with prefix grant", manifest.Grants{Events: manifest.EventGrants{Publish: l("image.*")}}, publish("image.saved"), false, "", ""},

		{"fetch without grant", manifest.Grants{}, fetch("https://api.example.com/x"), true, "fetch", "api.example.com:443"},
		{"fetch other host", manifest.Grants{Egress: manifest.EgressGrants{Hosts: l("api.example.com")}}, fetch("https://evil.example.net/"), true, "fetch", "evil.example.net:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil)
			err := tt.op(context.Background(), hs.host, caller(tt.grants))
			if !tt.denied {
				requireErrorIs(t, err, nil)
				if n := len(security(hs.logs)); n != 0 {
					t.Fatalf("allowed call wrote %d security lines", n)
				}
				if n := len(hs.flogs.denials); n != 0 {
					t.Fatalf("allowed call wrote %d denials to the function log", n)
				}
				return
			}
			requireErrorIs(t, err, aegis.ErrPermissionDenied)
			if !strings.Contains(err.Error(), "not granted") {
				t.Errorf("denial message %q does not say what was not granted", err)
			}
			requireOneDenial(t, hs.logs, tt.capability, tt.resource)
			// The developer's copy: the function log names the same
			// capability and resource, and a reason.
			if d := hs.flogs.denials; len(d) != 1 || !strings.HasPrefix(d[0], tt.capability+" "+tt.resource+" ") || strings.HasSuffix(d[0], " ") {
				t.Errorf("function log denials %q, want one of %s on %s with a reason", d, tt.capability, tt.resource)
			}
			if hs.tables.calls+hs.objects.calls+len(hs.events.topics) != 0 {
				t.Fatal("a denied call reached the backend")
			}
		})
	}
}

func TestDenialMessage(t *testing.T) {
	hs := newHarness(t, nil)
	err := hs.host.KVPut(context.Background(), caller(manifest.Grants{}), "secrets", "k", nil)
	if got, want := err.Error(), `kv write to table "secrets" not granted: permission denied`; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
}

func TestNoCallerOrGrants(t *testing.T) {
	hs := newHarness(t, nil)
	ctx := context.Background()
	for _, c := range []*sandbox.Caller{nil, {App: "diary", Function: "f"}} {
		if _, err := hs.host.KVGet(ctx, c, "t", "k"); !errors.Is(err, aegis.ErrPermissionDenied) {
			t.Errorf("KVGet with caller %v: %v", c, err)
		}
		if err := hs.host.ObjectPut(ctx, c, "a", nil); !errors.Is(err, aegis.ErrPermissionDenied) {
			t.Errorf("ObjectPut with caller %v: %v", c, err)
		}
		if _, err := hs.host.ObjectList(ctx, c, ""); !errors.Is(err, aegis.ErrPermissionDenied) {
			t.Errorf("ObjectList with caller %v: %v", c, err)
		}
		if err := hs.host.Publish(ctx, c, "t", nil); !errors.Is(err, aegis.ErrPermissionDenied) {
			t.Errorf("Publish with caller %v: %v", c, err)
		}
		if _, err := hs.host.Fetch(ctx, c, &sandbox.FetchRequest{URL: "https://example.com/"}); !errors.Is(err, aegis.ErrPermissionDenied) {
			t.Errorf("Fetch with caller %v: %v", c, err)
		}
		if _, err := hs.host.Invoke(ctx, c, &sandbox.InvokeRequest{Path: "/x"}); !errors.Is(err, aegis.ErrPermissionDenied) {
			t.Errorf("Invoke with caller %v: %v", c, err)
		}
		hs.host.Log(ctx, c, slog.LevelInfo, "x") // must not panic
	}
}

func TestKVRoundTrip(t *testing.T) {
	hs := newHarness(t, nil)
	ctx := context.Background()
	c := caller(manifest.Grants{KV: manifest.ReadWrite{Write: []string{"entries"}}})
	requireErrorIs(t, hs.host.KVPut(ctx, c, "entries", "2024/a", []byte("1")), nil)
	requireErrorIs(t, hs.host.KVPut(ctx, c, "entries", "2025/b", []byte("2")), nil)
	v, err := hs.host.KVGet(ctx, c, "entries", "2024/a")
	requireErrorIs(t, err, nil)
	if string(v) != "1" {
		t.Fatalf("get = %q", v)
	}
	keys, err := hs.host.KVList(ctx, c, "entries", "2024/")
	requireErrorIs(t, err, nil)
	if !slices.Equal(keys, []string{"2024/a"}) {
		t.Fatalf("list = %v", keys)
	}
	requireErrorIs(t, hs.host.KVDelete(ctx, c, "entries", "2024/a"), nil)
	_, err = hs.host.KVGet(ctx, c, "entries", "2024/a")
	requireErrorIs(t, err, aegis.ErrNotFound)
}

func TestValidation(t *testing.T) {
	all := manifest.Grants{
		KV:      manifest.ReadWrite{Write: []string{"*"}},
		Objects: manifest.ReadWrite{Write: []string{"*"}},
		Events:  manifest.EventGrants{Publish: []string{"*"}},
	}
	ctx := context.Background()
	long := strings.Repeat("a", 1025)
	tests := []struct {
		name string
		op   func(*Host, *sandbox.Caller) error
		want error
	}{
		{"table empty", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "", "k", nil) }, aegis.ErrInvalidArgument},
		{"table with dot", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "a.b", "k", nil) }, aegis.ErrInvalidArgument},
		{"table with star", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "a*", "k", nil) }, aegis.ErrInvalidArgument},
		{"table 65 chars", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, strings.Repeat("t", 65), "k", nil) }, aegis.ErrInvalidArgument},
		{"table 64 chars", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, strings.Repeat("t", 64), "k", nil) }, nil},
		{"key empty", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "", nil) }, aegis.ErrInvalidArgument},
		{"key leading dot", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", ".k", nil) }, aegis.ErrInvalidArgument},
		{"key trailing dot", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "k.", nil) }, aegis.ErrInvalidArgument},
		{"key empty token", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "a..b", nil) }, aegis.ErrInvalidArgument},
		{"key wildcard", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "a.>", nil) }, aegis.ErrInvalidArgument},
		{"key space", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "a b", nil) }, aegis.ErrInvalidArgument},
		{"key too long", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", long, nil) }, aegis.ErrInvalidArgument},
		{"key all allowed chars", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "a-b/c_d=e.F9", nil) }, nil},
		{"kv prefix bad", func(h *Host, c *sandbox.Caller) error { _, err := h.KVList(ctx, c, "t", "a*"); return err }, aegis.ErrInvalidArgument},
		{"value at cap", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "k", make([]byte, 64)) }, nil},
		{"value over cap", func(h *Host, c *sandbox.Caller) error { return h.KVPut(ctx, c, "t", "k", make([]byte, 65)) }, aegis.ErrLimitExceeded},
		{"topic wildcard", func(h *Host, c *sandbox.Caller) error { return h.Publish(ctx, c, "image.*", nil) }, aegis.ErrInvalidArgument},
		{"topic full wildcard", func(h *Host, c *sandbox.Caller) error { return h.Publish(ctx, c, ">", nil) }, aegis.ErrInvalidArgument},
		{"topic empty token", func(h *Host, c *sandbox.Caller) error { return h.Publish(ctx, c, "a..b", nil) }, aegis.ErrInvalidArgument},
		{"event payload over cap", func(h *Host, c *sandbox.Caller) error { return h.Publish(ctx, c, "a.b", make([]byte, 65)) }, aegis.ErrLimitExceeded},
		{"object key absolute", func(h *Host, c *sandbox.Caller) error { return h.ObjectPut(ctx, c, "/etc/passwd", nil) }, aegis.ErrInvalidArgument},
		{"object key trailing slash", func(h *Host, c *sandbox.Caller) error { return h.ObjectPut(ctx, c, "images/", nil) }, aegis.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, func(c *Config) { c.MaxValueSize = 64 })
			requireErrorIs(t, tt.op(hs.host, caller(all)), tt.want)
			if n := len(security(hs.logs)); n != 0 {
				t.Fatalf("invalid argument wrote %d security lines", n)
			}
		})
	}
}

// TestObjectTraversal checks that ".." is refused as invalid and, unlike
// other malformed keys, also recorded as a security event.
func TestObjectTraversal(t *testing.T) {
	ctx := context.Background()
	c := caller(manifest.Grants{Objects: manifest.ReadWrite{Write: []string{"*"}}})
	ops := map[string]func(h *Host) error{
		"objects.get":    func(h *Host) error { _, err := h.ObjectGet(ctx, c, "images/../../secrets/key"); return err },
		"objects.put":    func(h *Host) error { return h.ObjectPut(ctx, c, "images/../../secrets/key", nil) },
		"objects.delete": func(h *Host) error { return h.ObjectDelete(ctx, c, "images/../../secrets/key") },
		"objects.list":   func(h *Host) error { _, err := h.ObjectList(ctx, c, "images/../../secrets/key"); return err },
	}
	for capability, op := range ops {
		t.Run(capability, func(t *testing.T) {
			hs := newHarness(t, nil)
			err := op(hs.host)
			requireErrorIs(t, err, aegis.ErrInvalidArgument)
			if errors.Is(err, aegis.ErrPermissionDenied) {
				t.Fatal("traversal must be invalid, not a permission error")
			}
			requireOneDenial(t, hs.logs, capability, "images/../../secrets/key")
			if hs.objects.calls != 0 {
				t.Fatal("traversal reached the store")
			}
		})
	}
}

func TestObjectKeyNormalizedForStore(t *testing.T) {
	hs := newHarness(t, nil)
	c := caller(manifest.Grants{Objects: manifest.ReadWrite{Write: []string{"images/*"}}})
	requireErrorIs(t, hs.host.ObjectPut(context.Background(), c, "./images//2024/./a.png", []byte("x")), nil)
	if !slices.Equal(hs.objects.keys, []string{"images/2024/a.png"}) {
		t.Fatalf("store saw keys %q", hs.objects.keys)
	}
	keys, err := hs.host.ObjectList(context.Background(), c, "images//2024/")
	requireErrorIs(t, err, nil)
	if !slices.Equal(keys, []string{"images/2024/a.png"}) || hs.objects.keys[1] != "images/2024/" {
		t.Fatalf("list = %q, store saw %q", keys, hs.objects.keys)
	}
}

func TestMissingBackend(t *testing.T) {
	hs := newHarness(t, func(c *Config) { c.Tables, c.Objects, c.Events = nil, nil, nil })
	ctx := context.Background()
	all := caller(manifest.Grants{
		KV:      manifest.ReadWrite{Write: []string{"*"}},
		Objects: manifest.ReadWrite{Write: []string{"*"}},
		Events:  manifest.EventGrants{Publish: []string{"*"}},
	})
	_, err := hs.host.KVGet(ctx, all, "t", "k")
	requireErrorIs(t, err, aegis.ErrUnavailable)
	requireErrorIs(t, hs.host.ObjectPut(ctx, all, "k", nil), aegis.ErrUnavailable)
	requireErrorIs(t, hs.host.Publish(ctx, all, "t", nil), aegis.ErrUnavailable)
}

func TestLogTruncates(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want int // length in bytes after truncation
	}{
		{"short", "hello", 5},
		{"at cap", strings.Repeat("a", MaxLogMessage), MaxLogMessage},
		{"over cap", strings.Repeat("a", MaxLogMessage+10), MaxLogMessage},
		// "é" is two bytes: a cut at 4096 would split the last rune.
		{"rune boundary", "x" + strings.Repeat("é", MaxLogMessage/2), MaxLogMessage - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil)
			hs.host.Log(context.Background(), caller(manifest.Grants{}), slog.LevelInfo, tt.msg)
			if len(hs.flogs.msgs) != 1 {
				t.Fatalf("got %d log lines", len(hs.flogs.msgs))
			}
			got := hs.flogs.msgs[0]
			if len(got) != tt.want || !strings.HasPrefix(tt.msg, got) || !utf8Valid(got) {
				t.Fatalf("truncated to %d bytes (valid UTF-8: %v), want %d", len(got), utf8Valid(got), tt.want)
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
