package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
)

func shopAt(path string) string {
	return `app: shop
functions:
  orders:
    source: ./orders.wasm
    triggers:
      - http: { method: POST, path: "` + path + `" }
  audit:
    source: ./audit.wasm
`
}

// A deploy of what is already active records nothing and says so; any
// change to the manifest's meaning, a module or a schema file is a new
// version.
func TestDeployUnchanged(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	deploy := func(text string, modules, schemas map[string]string) (*App, bool) {
		t.Helper()
		app, unchanged, err := tr.Deploy(ctx, DeployRequest{App: "shop", Manifest: []byte(text), Modules: modules, Schemas: schemas})
		if err != nil {
			t.Fatal(err)
		}
		return app, unchanged
	}
	mods := map[string]string{"orders": tr.sum, "audit": tr.sum}
	v1, unchanged := deploy(schemaApp, mods, schemaFiles())
	if unchanged || v1.Version != 1 {
		t.Fatalf("first deploy: v%d unchanged=%v", v1.Version, unchanged)
	}
	// The same again, and the same written differently (a comment, flow
	// style, a method in lower case): the parsed manifest is what counts.
	reformatted := strings.Replace(schemaApp, "functions:", "# a comment\nfunctions:", 1)
	reformatted = strings.Replace(reformatted, "method: GET", "method: get", 1)
	for _, text := range []string{schemaApp, reformatted} {
		app, unchanged := deploy(text, mods, schemaFiles())
		if !unchanged || app != tr.Snapshot().Apps["shop"] || app.Version != 1 {
			t.Fatalf("redeploy of the active version: v%d unchanged=%v", app.Version, unchanged)
		}
	}
	if _, _, err := tr.state.Get(ctx, versionKey("shop", 2)); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("an unchanged deploy recorded a version: %v", err)
	}

	// A different schema file, a different module, a different manifest:
	// each a new version.
	other := bytes.Clone(emptyCommand)
	other[bytes.Index(other, []byte{0x05, 0x03, 0x01, 0x00, 0x01})+4] = 2 // two pages of memory
	h := sha256.Sum256(other)
	otherSum := hex.EncodeToString(h[:])
	if err := tr.PutModule(ctx, otherSum, other); err != nil {
		t.Fatal(err)
	}
	files := schemaFiles()
	files["schemas/id.json"] = `{"type":"object"}`
	for i, change := range []func() (*App, bool){
		func() (*App, bool) { return deploy(schemaApp, mods, files) },
		func() (*App, bool) {
			return deploy(schemaApp, map[string]string{"orders": otherSum, "audit": tr.sum}, files)
		},
		func() (*App, bool) {
			return deploy(strings.Replace(schemaApp, "path: /plain", "path: /plainer", 1), map[string]string{"orders": otherSum, "audit": tr.sum}, files)
		},
	} {
		app, unchanged := change()
		if unchanged || app.Version != i+2 {
			t.Errorf("change %d: v%d unchanged=%v, want v%d", i, app.Version, unchanged, i+2)
		}
	}
}

// Rollback goes to any recorded version, Versions lists them, and the
// history follows so that a plain rollback afterwards still makes sense.
func TestRollbackToAnyVersion(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	mods := map[string]string{"orders": tr.sum, "audit": tr.sum}
	for _, p := range []string{"/v1", "/v2", "/v3"} {
		if _, _, err := tr.Deploy(ctx, DeployRequest{App: "shop", Manifest: []byte(shopAt(p)), Modules: mods}); err != nil {
			t.Fatal(err)
		}
	}
	vers, err := tr.Versions(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(vers) != 3 || vers[0].Version != 1 || vers[2].Version != 3 || !vers[2].Active || vers[0].Active ||
		vers[1].Modules["orders"] != tr.sum || vers[0].CreatedAt.IsZero() || vers[0].File != "aegis.yaml" {
		t.Fatalf("versions: %+v", vers)
	}
	if _, err := tr.Versions(ctx, "nope"); !errors.Is(err, aegis.ErrNotFound) {
		t.Errorf("versions of an unknown app: %v", err)
	}

	target, err := tr.RollbackTarget(ctx, "shop", 2)
	if err != nil || target.Functions["orders"].Triggers[0].HTTP.Path != "/v2" {
		t.Fatalf("rollback target v2: %v", err)
	}
	serves := func(want string) {
		t.Helper()
		if rt, _, _ := tr.Snapshot().Routes.Match("POST", want); rt == nil {
			t.Fatalf("%s is not served", want)
		}
	}
	rollback := func(to, want int, wantUnchanged bool) {
		t.Helper()
		app, unchanged, err := tr.Rollback(ctx, "shop", to)
		if err != nil {
			t.Fatalf("rollback to %d: %v", to, err)
		}
		if app.Version != want || unchanged != wantUnchanged || tr.Snapshot().Apps["shop"] != app {
			t.Fatalf("rollback to %d: active v%d unchanged=%v, want v%d unchanged=%v", to, app.Version, unchanged, want, wantUnchanged)
		}
	}
	rollback(1, 1, false) // two steps back at once
	serves("/v1")
	rollback(1, 1, true) // already active
	if _, _, err := tr.Rollback(ctx, "shop", 0); !errors.Is(err, aegis.ErrConflict) {
		t.Errorf("plain rollback from v1, which is where the history starts: %v", err)
	}
	rollback(3, 3, false) // forward, to a version rolled back from
	serves("/v3")
	rollback(0, 1, false) // and a plain rollback returns to where that came from
	serves("/v1")

	for _, to := range []int{4, 99} {
		_, _, err := tr.Rollback(ctx, "shop", to)
		if !errors.Is(err, ErrNoVersion) || !errors.Is(err, aegis.ErrNotFound) {
			t.Errorf("rollback to v%d: %v, want ErrNoVersion", to, err)
		}
		if _, err := tr.RollbackTarget(ctx, "shop", to); !errors.Is(err, ErrNoVersion) {
			t.Errorf("rollback target v%d: %v, want ErrNoVersion", to, err)
		}
	}
	if _, _, err := tr.Rollback(ctx, "nope", 1); !errors.Is(err, aegis.ErrNotFound) || errors.Is(err, ErrNoVersion) {
		t.Errorf("rollback of an unknown app: %v", err)
	}
	vers, _ = tr.Versions(ctx, "shop")
	if !vers[0].Active || vers[2].Active {
		t.Errorf("after the rollbacks: %+v", vers)
	}
}
