package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/strictjson"
)

// The records the servers write, read back as GET /v1/cluster answers:
// every live server by name with what it wrote, this one as of now, a
// record this version cannot read listed as unknown, a server that stopped
// writing gone once its record expires, one that stops cleanly gone at
// once, and a server whose writes fail degraded.
func TestHeartbeatRecords(t *testing.T) {
	ctx := context.Background()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(ctx)
	log := slog.New(slog.DiscardHandler)
	const ttl = 2 * time.Second
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	open := func(name string) *heartbeat {
		t.Helper()
		h, err := openHeartbeat(ctx, node, log, ttl, heartbeatRecord{Name: name, Version: "v1.2.3", StartedAt: started,
			Address: "http://127.0.0.1:8080", Admin: "http://127.0.0.1:8081"})
		if err != nil {
			t.Fatal(err)
		}
		h.interval = 200 * time.Millisecond
		return h
	}
	b, a := open("node-b"), open("node-a")
	a.start(ctx)
	b.start(ctx)
	defer a.stop(ctx)

	// What a server writes: every field, strictly readable.
	raw, _, err := a.bucket.Get(ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	var rec heartbeatRecord
	if err := strictjson.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("record %s: %v", raw, err)
	}
	if rec.Name != "node-a" || rec.Version != "v1.2.3" || rec.Health != adminapi.ServerOK || rec.Address != "http://127.0.0.1:8080" ||
		rec.Admin != "http://127.0.0.1:8081" || !rec.StartedAt.Equal(started) || time.Since(rec.LastSeen) > time.Minute {
		t.Errorf("record %+v", rec)
	}

	// A record of another version, which this one cannot read.
	if _, err := a.bucket.Put(ctx, "node-c", []byte(`{"name":"node-c","zone":"eu-1"}`)); err != nil {
		t.Fatal(err)
	}
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(st); got != "node-a:ok node-b:ok node-c:unknown" || st.Incomplete {
		t.Fatalf("servers %s (incomplete %v)", got, st.Incomplete)
	}
	for _, s := range st.Servers[:2] {
		if s.Version != "v1.2.3" || s.Address == "" || s.Admin == "" || s.LastSeen == nil || s.StartedAt == nil {
			t.Errorf("server %+v", s)
		}
	}
	if st.MetaLeader != "" {
		t.Errorf("meta leader %q of a server not clustered", st.MetaLeader)
	}

	// node-c never writes again: gone once its record is ttl old, while
	// node-a and node-b, still beating, stay.
	deadline := time.Now().Add(ttl + 5*time.Second)
	for names(mustStatus(t, b)) != "node-a:ok node-b:ok" {
		if time.Now().After(deadline) {
			t.Fatalf("node-c still listed %s after its record expired: %s", ttl, names(mustStatus(t, b)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(ttl) // beats keep the others' records younger than ttl
	if got := names(mustStatus(t, b)); got != "node-a:ok node-b:ok" {
		t.Fatalf("after %s of heartbeats: %s", ttl, got)
	}

	// A clean stop removes the record at once.
	b.stop(ctx)
	if got := names(mustStatus(t, a)); got != "node-a:ok" {
		t.Fatalf("after node-b stopped: %s", got)
	}

	// Writes that fail: degraded, and the others' records unread, only
	// this server listed and the answer marked incomplete.
	if err := node.Close(ctx); err != nil {
		t.Fatal(err)
	}
	a.beat(ctx)
	if h := a.Health(); h != adminapi.ServerDegraded {
		t.Errorf("health %q after a failed write", h)
	}
	st = mustStatus(t, a)
	if got := names(st); got != "node-a:degraded" || !st.Incomplete {
		t.Errorf("with NATS gone: %s (incomplete %v)", got, st.Incomplete)
	}
	if b, err := json.Marshal(st); err != nil || !json.Valid(b) {
		t.Errorf("answer %s: %v", b, err)
	}
}

func mustStatus(t *testing.T, h *heartbeat) adminapi.ClusterStatus {
	t.Helper()
	st, err := h.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// names is "name:health …" of the servers in the order listed.
func names(st adminapi.ClusterStatus) string {
	s := ""
	for i, srv := range st.Servers {
		if i > 0 {
			s += " "
		}
		s += srv.Name + ":" + srv.Health
	}
	return s
}

func TestHeartbeatKey(t *testing.T) {
	for name, want := range map[string]string{
		"aegis-0":                "aegis-0",
		"aegis-0.aegis.prod.svc": "aegis-0.aegis.prod.svc",
		"node one":               "node_one",
		".lead":                  "_lead",
		"a..b":                   "a__b",
		"":                       "_",
	} {
		if got := heartbeatKey(name); got != want || !jetstream.ValidKey(got) {
			t.Errorf("heartbeatKey(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestReachableURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "https://aegis.example.com:8443", "http://[::1]:8081"} {
		if got := reachableURL(u); got != u {
			t.Errorf("reachableURL(%q) = %q, want it unchanged", u, got)
		}
	}
	for _, u := range []string{"http://0.0.0.0:8080", "http://[::]:8080"} {
		got := reachableURL(u)
		if got == u || got == "" || got[len(got)-5:] != ":8080" {
			t.Errorf("reachableURL(%q) = %q, want this machine's address and the port", u, got)
		}
	}
}
