package registry

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// gatedStore holds the first read of key until a second one has happened,
// so that two registries changing one app read its record at the same
// moment, as two servers deploying it at once do.
type gatedStore struct {
	*revStore
	key   string
	reads atomic.Int32
	both  chan struct{}
}

func (s *gatedStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	b, rev, err := s.revStore.Get(ctx, key)
	if key == s.key {
		switch s.reads.Add(1) {
		case 1:
			select {
			case <-s.both:
			case <-time.After(10 * time.Second):
			}
		case 2:
			close(s.both)
		}
	}
	return b, rev, err
}

// arm makes the next two reads of key meet.
func (s *gatedStore) arm(key string) {
	s.key, s.both = key, make(chan struct{})
	s.reads.Store(0)
}

// gatedPeers is peers on a gatedStore.
func gatedPeers(t *testing.T) (a, b *peer, state *gatedStore, tr *testRegistry) {
	t.Helper()
	tr = newTestRegistry(t)
	state = &gatedStore{revStore: &revStore{Store: memkv.New()}}
	open := func() *peer {
		p := &peer{logs: logbuf.New()}
		p.Registry = New(Config{State: state, Modules: tr.modules, Engine: tr.engine,
			Logger: slog.New(slog.NewJSONHandler(p.logs, nil))})
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		return p
	}
	return open(), open(), state, tr
}

// Two servers deploying one app at the same moment never both record a
// version under one number (each would then serve its own manifest as
// "v2"): one deploy wins, the other is refused as a conflict and
// activates nothing; both servers then serve the winner, and the loser's
// next attempt becomes the next version.
func TestConcurrentDeploysNeverShareAVersion(t *testing.T) {
	a, b, state, tr := gatedPeers(t)
	ctx := context.Background()
	a.deploy(t, "shop", "/v1", tr.sum)

	state.arm(appKey("shop"))
	var wg sync.WaitGroup
	var errA, errB error
	var appA, appB *App
	wg.Go(func() {
		appA, _, errA = a.Deploy(ctx, DeployRequest{App: "shop", Manifest: []byte(appText("shop", "/a")), Modules: map[string]string{"orders": tr.sum}})
	})
	wg.Go(func() {
		appB, _, errB = b.Deploy(ctx, DeployRequest{App: "shop", Manifest: []byte(appText("shop", "/b")), Modules: map[string]string{"orders": tr.sum}})
	})
	wg.Wait()
	if (errA == nil) == (errB == nil) {
		t.Fatalf("two deploys read at once: errors %v and %v, want exactly one refused", errA, errB)
	}
	winner, loser, won, lost, loserErr, winPath, losePath := a, b, appA, appB, errB, "/a", "/b"
	if errA != nil {
		winner, loser, won, lost, loserErr, winPath, losePath = b, a, appB, appA, errA, "/b", "/a"
	}
	if !errors.Is(loserErr, ErrChangedElsewhere) || !errors.Is(loserErr, aegis.ErrConflict) {
		t.Errorf("the refused deploy: %v, want ErrChangedElsewhere (a conflict)", loserErr)
	}
	if lost != nil || won.Version != 2 {
		t.Fatalf("winner v%d, loser %v", won.Version, lost)
	}
	if got := loser.serves(losePath); got != "" {
		t.Errorf("the refused deploy serves %s as %q", losePath, got)
	}
	loser.follow(t)
	winner.follow(t)
	for _, p := range []*peer{a, b} {
		if got := p.serves(winPath); got != "shop v2" {
			t.Errorf("after following, %s is served as %q, want shop v2", winPath, got)
		}
		if got := p.serves(losePath); got != "" {
			t.Errorf("after following, the refused %s is served as %q", losePath, got)
		}
	}
	var v2 versionRecord
	if err := winner.getJSON(ctx, versionKey("shop", 2), &v2); err != nil {
		t.Fatal(err)
	}
	if got := v2.Manifest.Functions["orders"].Triggers[0].HTTP.Path; got != winPath {
		t.Errorf("v2's record holds %s, the winner deployed %s", got, winPath)
	}

	// Tried again, the refused deploy is a newer version: v3, or v4 when
	// it had claimed v3 before finding the app record changed (a number
	// claimed is never used twice).
	again := loser.deploy(t, "shop", losePath, tr.sum)
	if again.Version != 3 && again.Version != 4 {
		t.Errorf("the refused deploy tried again is v%d, want v3 or v4", again.Version)
	}
	vs, err := loser.Versions(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if last := vs[len(vs)-1]; last.Version != again.Version || !last.Active {
		t.Errorf("versions %+v: the newest is not the active v%d", vs, again.Version)
	}
}

// A rollback and a deploy through two servers at once: one is refused,
// and both servers serve whichever was not.
func TestConcurrentRollbackAndDeploy(t *testing.T) {
	a, b, state, tr := gatedPeers(t)
	ctx := context.Background()
	a.deploy(t, "shop", "/v1", tr.sum)
	a.deploy(t, "shop", "/v2", tr.sum)
	b.follow(t)

	state.arm(appKey("shop"))
	var wg sync.WaitGroup
	var errRollback, errDeploy error
	wg.Go(func() { _, _, errRollback = a.Rollback(ctx, "shop", 0) })
	wg.Go(func() {
		_, _, errDeploy = b.Deploy(ctx, DeployRequest{App: "shop", Manifest: []byte(appText("shop", "/v3")), Modules: map[string]string{"orders": tr.sum}})
	})
	wg.Wait()
	if (errRollback == nil) == (errDeploy == nil) {
		t.Fatalf("rollback %v, deploy %v: want exactly one refused", errRollback, errDeploy)
	}
	want := "/v1" // the rollback won
	if errRollback != nil {
		want = "/v3"
		if !errors.Is(errRollback, ErrChangedElsewhere) {
			t.Errorf("the refused rollback: %v", errRollback)
		}
	} else if !errors.Is(errDeploy, ErrChangedElsewhere) {
		t.Errorf("the refused deploy: %v", errDeploy)
	}
	a.follow(t)
	b.follow(t)
	for _, p := range []*peer{a, b} {
		if p.serves(want) == "" {
			t.Errorf("a server does not serve %s, what won", want)
		}
	}
	if a.Snapshot().Apps["shop"].Version != b.Snapshot().Apps["shop"].Version {
		t.Errorf("the servers serve v%d and v%d", a.Snapshot().Apps["shop"].Version, b.Snapshot().Apps["shop"].Version)
	}
}
