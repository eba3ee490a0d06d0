package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// revStore is the state store with the last revision the JetStream bucket
// offers: it moves with every write and delete.
type revStore struct {
	*memkv.Store
	rev   atomic.Uint64
	reads atomic.Int64 // LastRevision calls
	lists atomic.Int64 // Keys calls
}

func (s *revStore) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	s.rev.Add(1)
	return s.Store.Put(ctx, key, v)
}

func (s *revStore) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	s.rev.Add(1)
	return s.Store.Create(ctx, key, v)
}

func (s *revStore) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	s.rev.Add(1)
	return s.Store.Update(ctx, key, v, rev)
}

func (s *revStore) Delete(ctx context.Context, key string) error {
	s.rev.Add(1)
	return s.Store.Delete(ctx, key)
}

func (s *revStore) Keys(ctx context.Context, prefix string) ([]string, error) {
	s.lists.Add(1)
	return s.Store.Keys(ctx, prefix)
}

func (s *revStore) LastRevision(context.Context) (uint64, error) {
	s.reads.Add(1)
	return s.rev.Load(), nil
}

// peer is one server of a pair sharing their stores: its registry, how
// many times its triggers were synced, and its log.
type peer struct {
	*Registry
	changes atomic.Int64
	logs    *logbuf.Buffer
}

func (p *peer) count(msg string) int { return len(p.logs.Messages(msg)) }

// peers returns two registries on the same stores, as two servers on one
// NATS, and the module every function runs.
func peers(t *testing.T) (a, b *peer, state *revStore, tr *testRegistry) {
	t.Helper()
	tr = newTestRegistry(t)
	state = &revStore{Store: memkv.New()}
	open := func() *peer {
		p := &peer{logs: logbuf.New()}
		p.Registry = New(Config{State: state, Modules: tr.modules, Engine: tr.engine,
			Logger:   slog.New(slog.NewJSONHandler(p.logs, nil)),
			OnChange: func(*Snapshot) { p.changes.Add(1) }})
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		return p
	}
	return open(), open(), state, tr
}

func appText(name, path string) string {
	return "app: " + name + `
functions:
  orders:
    source: ./orders.wasm
    triggers:
      - http: { method: POST, path: "` + path + `" }
`
}

func (p *peer) deploy(t *testing.T, name, path, sum string) *App {
	t.Helper()
	app, _, err := p.Deploy(context.Background(), DeployRequest{App: name, Manifest: []byte(appText(name, path)), Modules: map[string]string{"orders": sum}})
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func (p *peer) follow(t *testing.T) {
	t.Helper()
	if err := p.Registry.follow(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// serves reports the app and version that answer path on p, "" for none.
func (p *peer) serves(path string) string {
	rt, _, err := p.Snapshot().Routes.Match("POST", path)
	if err != nil {
		return ""
	}
	return rt.App + " " + p.Snapshot().Apps[rt.App].VersionLabel()
}

// A deploy, a rollback and a delete made through one registry are what
// the other serves after one comparison, its triggers synced each time;
// neither rebuilds what it already serves, and a delete followed by a new
// deploy of the same name (v1 again) is told apart from the v1 before.
func TestFollowDeployRollbackDelete(t *testing.T) {
	a, b, _, tr := peers(t)
	ctx := context.Background()
	both := func() {
		t.Helper()
		a.follow(t)
		b.follow(t)
	}

	v1 := a.deploy(t, "shop", "/v1", tr.sum)
	both()
	if got := b.serves("/v1"); got != "shop v1" {
		t.Fatalf("b serves %q after the deploy, want shop v1", got)
	}
	if a.Snapshot().Apps["shop"] != v1 || a.changes.Load() != 1 {
		t.Fatalf("a rebuilt what it deployed itself: %d syncs", a.changes.Load())
	}
	if !b.Snapshot().Apps["shop"].DeployedAt.Equal(v1.DeployedAt) {
		t.Errorf("b's deploy time %s, want the record's %s", b.Snapshot().Apps["shop"].DeployedAt, v1.DeployedAt)
	}
	followed := b.Snapshot().Apps["shop"]
	both()
	if b.Snapshot().Apps["shop"] != followed || b.changes.Load() != 1 {
		t.Fatalf("a comparison with nothing changed rebuilt the app: %d syncs", b.changes.Load())
	}

	a.deploy(t, "shop", "/v2", tr.sum)
	both()
	if b.serves("/v2") != "shop v2" || b.serves("/v1") != "" {
		t.Fatalf("after v2 b serves /v2 %q, /v1 %q", b.serves("/v2"), b.serves("/v1"))
	}
	if _, _, err := a.Rollback(ctx, "shop", 0); err != nil {
		t.Fatal(err)
	}
	both()
	if b.serves("/v1") != "shop v1" || b.serves("/v2") != "" {
		t.Fatalf("after the rollback b serves /v1 %q, /v2 %q", b.serves("/v1"), b.serves("/v2"))
	}
	// A change made through b reaches a the same way.
	b.deploy(t, "shop", "/v3", tr.sum)
	both()
	if a.serves("/v3") != "shop v3" {
		t.Fatalf("a serves %q after b's deploy, want shop v3", a.serves("/v3"))
	}

	if err := a.Delete(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	both()
	if len(b.Snapshot().Apps) != 0 || b.serves("/v3") != "" {
		t.Fatalf("b still serves %v after the delete", b.Snapshot().AppNames())
	}
	a.deploy(t, "shop", "/v1", tr.sum) // v1 again, a new one
	a.follow(t)
	b.follow(t)
	if b.serves("/v1") != "shop v1" {
		t.Fatalf("b serves %q after the app was deployed again", b.serves("/v1"))
	}
	// Deleted and deployed again between two comparisons: v1 on both
	// sides, told apart by the deploy time.
	if err := a.Delete(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	a.deploy(t, "shop", "/again", tr.sum)
	b.follow(t)
	if b.serves("/again") != "shop v1" || b.serves("/v1") != "" {
		t.Fatalf("after a delete and a deploy b serves /again %q and /v1 %q", b.serves("/again"), b.serves("/v1"))
	}
	// deploy, deploy, rollback, a's deploy, two new v1s on b; b's deploy on a.
	if got := b.count("app followed"); got != 5 {
		t.Errorf("b followed %d changes, want 5", got)
	}
	if got := a.count("app followed"); got != 1 {
		t.Errorf("a followed %d changes, want 1 (b's deploy)", got)
	}
	if b.count("app removed") != 1 || a.count("app removed") != 0 {
		t.Errorf("removals logged: a %d, b %d; want 0 and 1", a.count("app removed"), b.count("app removed"))
	}
}

// A version whose modules do not build where it is followed leaves the
// version served before in place, logged once however many comparisons
// find it, until the record changes again.
func TestFollowKeepsServingWhenBuildFails(t *testing.T) {
	a, b, _, tr := peers(t)
	a.deploy(t, "shop", "/v1", tr.sum)
	b.follow(t)

	other := bytes.Clone(emptyCommand)
	other[bytes.Index(other, []byte{0x05, 0x03, 0x01, 0x00, 0x01})+4] = 2 // two pages of memory
	h := sha256.Sum256(other)
	otherSum := hex.EncodeToString(h[:])
	if err := a.PutModule(context.Background(), otherSum, other); err != nil {
		t.Fatal(err)
	}
	a.deploy(t, "shop", "/v2", otherSum)
	// The module is damaged in the store after a built it: b cannot.
	if err := tr.modules.Put(context.Background(), "sha256-"+otherSum, []byte("not wasm")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b.follow(t)
	}
	if b.serves("/v1") != "shop v1" || b.serves("/v2") != "" {
		t.Fatalf("b serves /v1 %q and /v2 %q, want v1 kept", b.serves("/v1"), b.serves("/v2"))
	}
	if got := b.count("follow app failed: the version served before is kept"); got != 1 {
		t.Fatalf("the failure was logged %d times, want once", got)
	}
	a.deploy(t, "shop", "/v3", tr.sum)
	b.follow(t)
	if b.serves("/v3") != "shop v3" {
		t.Fatalf("b serves %q after a version that builds, want shop v3", b.serves("/v3"))
	}
}

// An app whose module cannot be read when a server restores it (a
// replica catching up after a restart) is built once it can be, by the
// follower, though its record never changes; the failure is logged once
// and the store is not read at every comparison meanwhile.
func TestFollowRetriesWhatCouldNotBeRead(t *testing.T) {
	a, b, _, tr := peers(t)
	a.deploy(t, "shop", "/v1", tr.sum)
	tr.modules.setUnreadable(true)
	if err := b.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.follow(t)
	if b.serves("/v1") != "" || !b.retryPending.Load() {
		t.Fatalf("b serves %q with the module unreadable; retry pending %v", b.serves("/v1"), b.retryPending.Load())
	}
	time.Sleep(firstRetryWait + 100*time.Millisecond)
	b.follow(t) // still unreadable: the wait grows
	const msg = "app not built yet: what it needs could not be read; trying again"
	if got := b.count(msg); got != 1 {
		t.Fatalf("logged %d times, want once", got)
	}
	if got := b.count("restore app failed"); got != 0 {
		t.Fatalf("a read failure logged as a failed restore %d times", got)
	}
	tr.modules.setUnreadable(false)
	f := b.Follow(20 * time.Millisecond)
	defer f.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for b.serves("/v1") != "shop v1" {
		if time.Now().After(deadline) {
			t.Fatal("the app was not built once its module could be read")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Stop()
	if b.retryPending.Load() {
		t.Error("a retry still pending after the build")
	}
}

// A route that moves from one app to another in one comparison: the app
// taking it may come first (names sort that way) and is activated once
// the other has let it go.
func TestFollowRouteMovesBetweenApps(t *testing.T) {
	a, b, _, tr := peers(t)
	a.deploy(t, "zeta", "/x", tr.sum)
	b.follow(t)
	a.deploy(t, "zeta", "/y", tr.sum)
	a.deploy(t, "alpha", "/x", tr.sum)
	b.follow(t)
	if b.serves("/x") != "alpha v1" || b.serves("/y") != "zeta v2" {
		t.Fatalf("b serves /x %q and /y %q, want alpha v1 and zeta v2\n%s", b.serves("/x"), b.serves("/y"), b.logs.String())
	}
}

// The follower reads the app records only when the store's revision
// moved (and on its first comparison), so a quiet store costs one
// request per interval.
func TestFollowerReadsOnlyAfterAChange(t *testing.T) {
	a, b, state, tr := peers(t)
	f := &Follower{r: b.Registry}
	ctx := context.Background()
	f.run(ctx) // the first comparison reads
	if state.lists.Load() != 1 {
		t.Fatalf("the first comparison listed the apps %d times, want 1", state.lists.Load())
	}
	for range 5 {
		f.run(ctx)
	}
	if state.lists.Load() != 1 || state.reads.Load() != 6 {
		t.Fatalf("quiet store: %d listings and %d revision reads, want 1 and 6", state.lists.Load(), state.reads.Load())
	}
	a.deploy(t, "shop", "/v1", tr.sum)
	listed := state.lists.Load()
	f.run(ctx)
	if state.lists.Load() != listed+1 || b.serves("/v1") != "shop v1" {
		t.Fatalf("after a deploy: b serves %q", b.serves("/v1"))
	}
	if !strings.Contains(b.logs.String(), `"msg":"app followed"`) {
		t.Errorf("no line said the app was followed:\n%s", b.logs.String())
	}
}
