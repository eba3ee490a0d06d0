package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/testkit/memkv"
)

// switchableCluster reports the health it is set to.
type switchableCluster struct{ health atomic.Value }

func (c *switchableCluster) Status(context.Context) (adminapi.ClusterStatus, error) {
	return adminapi.ClusterStatus{}, nil
}
func (c *switchableCluster) Health() string { return c.health.Load().(string) }

// GET /v1/ready follows the server's health, without a token: 200 while
// ok, 503 while degraded; GET /v1/health answers 200 either way.
func TestReadyFollowsHealth(t *testing.T) {
	c := &switchableCluster{}
	c.health.Store(adminapi.ServerOK)
	srv := httptest.NewServer(New(Config{Token: rootToken, Registry: registry.New(registry.Config{State: memkv.New()}), Cluster: c}))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h adminapi.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode, h.Status
	}
	if st, h := get("/v1/ready"); st != 200 || h != adminapi.ServerOK {
		t.Errorf("ready while ok: %d %q", st, h)
	}
	c.health.Store(adminapi.ServerDegraded)
	if st, h := get("/v1/ready"); st != 503 || h != adminapi.ServerDegraded {
		t.Errorf("ready while degraded: %d %q", st, h)
	}
	if st, h := get("/v1/health"); st != 200 || h != "ok" {
		t.Errorf("health while degraded: %d %q", st, h)
	}
}
