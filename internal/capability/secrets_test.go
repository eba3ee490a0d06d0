package capability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/telemetry"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
	"github.com/aegis-platform/aegis/manifest"
)

// memSecrets is a vault of app/name → value that counts its reads.
type memSecrets struct {
	mu    sync.Mutex
	m     map[string]string
	reads int
}

func (s *memSecrets) Read(_ context.Context, app, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	v, ok := s.m[app+"/"+name]
	if !ok {
		return nil, fmt.Errorf("read secret %s/%s: %w", app, name, aegis.ErrNotFound)
	}
	return []byte(v), nil
}

const secretValue = "sk_live_51Hq9-value"

func secretsHarness(t *testing.T, modify func(*Config)) (*harness, *memSecrets) {
	t.Helper()
	vault := &memSecrets{m: map[string]string{"diary/WEBHOOK_TOKEN": secretValue, "other/DB": "x"}}
	hs := newHarness(t, func(c *Config) {
		c.Secrets = vault
		if modify != nil {
			modify(c)
		}
	})
	return hs, vault
}

func TestSecretGranted(t *testing.T) {
	hs, vault := secretsHarness(t, nil)
	c := caller(manifest.Grants{Secrets: []string{"WEBHOOK_TOKEN", "MISSING", "DB"}})
	v, err := hs.host.Secret(context.Background(), c, "WEBHOOK_TOKEN")
	requireErrorIs(t, err, nil)
	if string(v) != secretValue {
		t.Fatalf("value = %q", v)
	}
	// Granted but not set; and another app's secret of a granted name is
	// not this app's.
	for _, name := range []string{"MISSING", "DB"} {
		_, err = hs.host.Secret(context.Background(), c, name)
		requireErrorIs(t, err, aegis.ErrNotFound)
		if !strings.Contains(err.Error(), name) {
			t.Errorf("not-found error %q does not name the secret", err)
		}
	}
	if vault.reads != 3 || len(security(hs.logs)) != 0 || len(hs.flogs.denials) != 0 {
		t.Fatalf("reads %d, security lines %v, denials %v", vault.reads, security(hs.logs), hs.flogs.denials)
	}
	if strings.Contains(hs.logs.String(), secretValue) {
		t.Fatalf("secret value in the server log:\n%s", hs.logs)
	}
}

// TestSecretDenied: no grant (or a grant of another name) is a permission
// error, one security line, one denial record in the function log and one
// count in the denials metric; the vault is never asked.
func TestSecretDenied(t *testing.T) {
	m := metrics.New()
	for _, g := range []manifest.Grants{{}, {Secrets: []string{"OTHER"}}, {KV: manifest.ReadWrite{Read: []string{"*"}}}} {
		hs, vault := secretsHarness(t, func(c *Config) { c.Metrics = m })
		_, err := hs.host.Secret(context.Background(), caller(g), "WEBHOOK_TOKEN")
		requireErrorIs(t, err, aegis.ErrPermissionDenied)
		if got, want := err.Error(), `secret "WEBHOOK_TOKEN" not granted: permission denied`; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		requireOneDenial(t, hs.logs, "secrets.get", "WEBHOOK_TOKEN")
		if len(hs.flogs.denials) != 1 || hs.flogs.denials[0] != "secrets.get WEBHOOK_TOKEN no secret grant" {
			t.Errorf("function log denials = %v", hs.flogs.denials)
		}
		if vault.reads != 0 {
			t.Errorf("a denied read reached the vault")
		}
	}
	if got := m.PermissionDenials("diary", "save-entry", "secrets.get"); got != 3 {
		t.Errorf("denials counted = %v, want 3", got)
	}
	// No caller, or one without grants.
	hs, _ := secretsHarness(t, nil)
	if _, err := hs.host.Secret(context.Background(), nil, "WEBHOOK_TOKEN"); err == nil {
		t.Error("a read without a caller succeeded")
	}
}

func TestSecretInvalidName(t *testing.T) {
	hs, vault := secretsHarness(t, nil)
	c := caller(manifest.Grants{Secrets: []string{"WEBHOOK_TOKEN"}})
	for _, name := range []string{"", "*", "WEBHOOK_*", "a/b", strings.Repeat("a", 65), "x\n"} {
		_, err := hs.host.Secret(context.Background(), c, name)
		requireErrorIs(t, err, aegis.ErrInvalidArgument)
	}
	if vault.reads != 0 || len(security(hs.logs)) != 0 {
		t.Fatalf("a malformed name reached the vault or was logged as a denial")
	}
}

func TestSecretWithoutVault(t *testing.T) {
	hs := newHarness(t, nil)
	_, err := hs.host.Secret(context.Background(), caller(manifest.Grants{Secrets: []string{"A_B"}}), "A_B")
	requireErrorIs(t, err, aegis.ErrUnavailable)
	// The grant is checked first: no vault is no excuse to skip a denial.
	_, err = hs.host.Secret(context.Background(), caller(manifest.Grants{}), "A_B")
	requireErrorIs(t, err, aegis.ErrPermissionDenied)
}

// TestSecretSpanAndEdges: the span and the call graph name the secret,
// never its value.
func TestSecretSpanAndEdges(t *testing.T) {
	ctx := context.Background()
	rec := &spanRecorder{}
	store := memkv.New()
	graph := callgraph.New(callgraph.Config{Store: store, FlushEvery: time.Hour})
	t.Cleanup(func() { _ = graph.Close(ctx) })
	hs, _ := secretsHarness(t, func(c *Config) { c.Spans = rec; c.Graph = graph })
	c := caller(manifest.Grants{Secrets: []string{"WEBHOOK_TOKEN"}})
	c.Trace = telemetry.Span{TraceID: telemetry.NewID(), SpanID: telemetry.NewSpanID()}
	host := hs.host.Traced()
	if _, err := host.Secret(ctx, c, "WEBHOOK_TOKEN"); err != nil {
		t.Fatal(err)
	}
	_, _ = host.Secret(ctx, c, "DB")
	if len(rec.spans) != 2 {
		t.Fatalf("got %d spans", len(rec.spans))
	}
	for i, s := range rec.spans {
		a, _ := attr(s, telemetry.AttrResource)
		if s.Name != "secrets.get" || a.Str != []string{"WEBHOOK_TOKEN", "DB"}[i] {
			t.Errorf("span %d = %+v", i, s)
		}
		for _, a := range s.Attrs {
			if strings.Contains(a.Str, secretValue) {
				t.Errorf("span carries the value: %+v", a)
			}
		}
	}
	if rec.spans[0].Error != "" || rec.spans[1].Error != "no secret grant" {
		t.Errorf("span errors %q, %q", rec.spans[0].Error, rec.spans[1].Error)
	}
	got := observedEdges(t, graph, store, "diary")
	want := map[callgraph.Edge][2]int64{
		{Kind: callgraph.Secret, From: "save-entry", To: "WEBHOOK_TOKEN"}: {1, 0},
		{Kind: callgraph.Secret, From: "save-entry", To: "DB"}:            {0, 1},
	}
	if len(got) != len(want) || got[callgraph.Edge{Kind: callgraph.Secret, From: "save-entry", To: "WEBHOOK_TOKEN"}] != [2]int64{1, 0} ||
		got[callgraph.Edge{Kind: callgraph.Secret, From: "save-entry", To: "DB"}] != [2]int64{0, 1} {
		t.Errorf("edges = %v, want %v", got, want)
	}
}
