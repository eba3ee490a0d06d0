package capability

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

// capped returns a caller with the given limits and a meter of its own, as
// the sandbox builds one per invocation.
func capped(g manifest.Grants, l manifest.Limits) *sandbox.Caller {
	c := caller(g)
	l = l.WithDefaults()
	c.Limits, c.Meter = &l, &sandbox.Meter{}
	return c
}

// requireCapDenial checks that err is a permission-style refusal and that
// exactly one security line names the cap.
func requireCapDenial(t *testing.T, hs *harness, err error, capability, limit string) {
	t.Helper()
	requireErrorIs(t, err, aegis.ErrPermissionDenied)
	if !strings.Contains(err.Error(), "limits."+limit) {
		t.Errorf("error %q does not name limits.%s", err, limit)
	}
	lines := security(hs.logs)
	if len(lines) != 1 {
		t.Fatalf("got %d security lines, want 1:\n%s", len(lines), hs.logs.String())
	}
	if lines[0]["capability"] != capability || !strings.Contains(lines[0]["reason"].(string), limit) {
		t.Errorf("security line %v does not name %s and %s", lines[0], capability, limit)
	}
}

func TestMaxPublishes(t *testing.T) {
	hs := newHarness(t, nil)
	c := capped(manifest.Grants{Events: manifest.EventGrants{Publish: []string{"t"}}}, manifest.Limits{MaxPublishes: 3})
	ctx := context.Background()
	for i := range 3 {
		if err := hs.host.Publish(ctx, c, "t", []byte("{}")); err != nil {
			t.Fatalf("publish %d: %v", i+1, err)
		}
	}
	requireCapDenial(t, hs, hs.host.Publish(ctx, c, "t", []byte("{}")), "events.publish", "max_publishes")
	if got := len(hs.events.topics); got != 3 {
		t.Errorf("%d events published, want 3", got)
	}
	// The next invocation has a meter of its own.
	c.Meter = &sandbox.Meter{}
	if err := hs.host.Publish(ctx, c, "t", []byte("{}")); err != nil {
		t.Fatalf("publish in a new invocation: %v", err)
	}
}

func TestMaxEventSize(t *testing.T) {
	hs := newHarness(t, nil)
	c := capped(manifest.Grants{Events: manifest.EventGrants{Publish: []string{"t"}}}, manifest.Limits{MaxEventSize: 100})
	ctx := context.Background()
	if err := hs.host.Publish(ctx, c, "t", make([]byte, 100)); err != nil {
		t.Fatalf("event at the cap: %v", err)
	}
	requireCapDenial(t, hs, hs.host.Publish(ctx, c, "t", make([]byte, 101)), "events.publish", "max_event_size")
}

func TestMaxFetches(t *testing.T) {
	env := newFetchEnv(t, testMux(), nil, nil)
	c := capped(egress("127.0.0.1"), manifest.Limits{MaxFetches: 2})
	ctx := context.Background()
	for i := range 2 {
		if _, err := env.hs.host.Fetch(ctx, c, &sandbox.FetchRequest{URL: env.srv.URL + "/ok"}); err != nil {
			t.Fatalf("fetch %d: %v", i+1, err)
		}
	}
	_, err := env.hs.host.Fetch(ctx, c, &sandbox.FetchRequest{URL: env.srv.URL + "/ok"})
	requireCapDenial(t, env.hs, err, "fetch", "max_fetches")
	if c.Meter.Fetches != 2 {
		t.Errorf("meter counts %d fetches, want 2", c.Meter.Fetches)
	}
}

// max_egress counts bytes sent and received through fetch; a response
// that would take the invocation past it is cut where the allowance ends.
func TestMaxEgress(t *testing.T) {
	env := newFetchEnv(t, testMux(), nil, nil)
	c := capped(egress("127.0.0.1"), manifest.Limits{MaxEgress: 1000})
	ctx := context.Background()
	resp, err := env.hs.host.Fetch(ctx, c, &sandbox.FetchRequest{Method: "POST", URL: env.srv.URL + "/echo", Body: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(100 + len(resp.Body)); c.Meter.EgressBytes != want {
		t.Fatalf("meter counts %d bytes, want %d", c.Meter.EgressBytes, want)
	}
	left := 1000 - c.Meter.EgressBytes
	if _, err := env.hs.host.Fetch(ctx, c, &sandbox.FetchRequest{URL: env.srv.URL + "/size/" + strconv.FormatInt(left, 10)}); err != nil {
		t.Fatalf("a response of exactly what is left: %v", err)
	}
	if c.Meter.EgressBytes != 1000 {
		t.Fatalf("meter counts %d bytes, want 1000", c.Meter.EgressBytes)
	}
	_, err = env.hs.host.Fetch(ctx, c, &sandbox.FetchRequest{Method: "POST", URL: env.srv.URL + "/echo", Body: []byte("x")})
	requireCapDenial(t, env.hs, err, "fetch", "max_egress")

	// A response over the allowance is refused, and only what was read
	// up to it is counted.
	env2 := newFetchEnv(t, testMux(), nil, nil)
	c2 := capped(egress("127.0.0.1"), manifest.Limits{MaxEgress: 500})
	_, err = env2.hs.host.Fetch(ctx, c2, &sandbox.FetchRequest{URL: env2.srv.URL + "/size/501"})
	requireCapDenial(t, env2.hs, err, "fetch", "max_egress")
	if c2.Meter.EgressBytes != 500 {
		t.Errorf("meter counts %d bytes, want 500", c2.Meter.EgressBytes)
	}
}
