package cli

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/manifest"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const schemaManifest = `app: shop
functions:
  orders:
    source: ./orders.wasm
    triggers:
      - http: { method: POST, path: /orders, schema: { body: schemas/order.json } }
      - event: { topic: order.placed, schema: schemas/placed.json }
`

func loadSchemas(t *testing.T, dir string) (map[string]string, error) {
	t.Helper()
	p := filepath.Join(dir, "aegis.yaml")
	m, pos, err := manifest.LoadWithPositions(p)
	if err != nil {
		t.Fatal(err)
	}
	return readSchemas(p, m, pos)
}

func TestReadSchemasFollowsRelativeRefs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"aegis.yaml":               schemaManifest,
		"schemas/order.json":       `{"properties": {"item": {"$ref": "common/item.json#/$defs/item"}, "ex": {"const": {"$ref": "nowhere.json"}}, "net": {"$ref": "https://example.com/x.json"}, "self": {"$ref": "#/properties/item"}}}`,
		"schemas/common/item.json": `{"$defs": {"item": {"$ref": "../shared.json"}}}`,
		"schemas/shared.json":      `{"type": "string"}`,
		"schemas/placed.json":      `{"type": "object"}`,
		"schemas/unused.json":      `{}`,
	})
	got, err := loadSchemas(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	want := "schemas/common/item.json,schemas/order.json,schemas/placed.json,schemas/shared.json"
	if strings.Join(names, ",") != want {
		t.Errorf("read %v, want %s", names, want)
	}
	if got["schemas/shared.json"] != `{"type": "string"}` {
		t.Errorf("content: %q", got["schemas/shared.json"])
	}
}

func TestReadSchemasRefusals(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.json": `{"secret": true}`})
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"missing file", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schemas/order.json": `{}`})
		}, "aegis.yaml:7: functions.orders.triggers[1].event.schema: schema file schemas/placed.json: not found in "},
		{"missing body schema", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schemas/placed.json": `{}`})
		}, "aegis.yaml:6: functions.orders.triggers[0].http.schema.body: schema file schemas/order.json: not found in "},
		{"oversize file", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schemas/order.json": `{}`, "schemas/placed.json": `"` + strings.Repeat("x", manifest.MaxSchemaFileSize) + `"`})
		}, "larger than"},
		{"symlink out of the directory", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schemas/order.json": `{}`})
			if err := os.Symlink(filepath.Join(outside, "secret.json"), filepath.Join(dir, "schemas", "placed.json")); err != nil {
				t.Skip(err)
			}
		}, "schema file schemas/placed.json: leads outside "},
		{"$ref through a symlink out of the directory", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schemas/order.json": `{"$ref": "link/secret.json"}`, "schemas/placed.json": `{}`})
			if err := os.Symlink(outside, filepath.Join(dir, "schemas", "link")); err != nil {
				t.Skip(err)
			}
		}, "schemas/link/secret.json"},
		{"a directory", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"schemas/order.json": `{}`, "schemas/placed.json/x": `{}`})
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"aegis.yaml": schemaManifest})
			tt.setup(t, dir)
			got, err := loadSchemas(t, dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, %v; want an error naming %q", got, err, tt.want)
			}
			if strings.Contains(err.Error(), `"secret"`) {
				t.Errorf("error shows the outside file: %v", err)
			}
		})
	}

	// A symlink that stays inside the directory is followed.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"aegis.yaml": schemaManifest, "schemas/order.json": `{}`, "real/placed.json": `{"type":"object"}`})
	if err := os.Symlink(filepath.Join("..", "real", "placed.json"), filepath.Join(dir, "schemas", "placed.json")); err != nil {
		t.Skip(err)
	}
	got, err := loadSchemas(t, dir)
	if err != nil || got["schemas/placed.json"] != `{"type":"object"}` {
		t.Errorf("inside symlink: %v %v", got, err)
	}
}

func TestReadSchemasWithoutSchemas(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"aegis.yaml": "app: shop\nfunctions:\n  f:\n    source: ./f.wasm\n"})
	got, err := loadSchemas(t, dir)
	if err != nil || got != nil {
		t.Errorf("got %v %v", got, err)
	}
}
