package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aegis-platform/aegis"
)

const positioned = `app: shop
functions:
  orders:
    # the source comes after the triggers on purpose
    triggers:
      - http: { method: POST, path: /orders, schema: schemas/order.json }
      - http:
          method: GET
          path: /orders
          schema:
            query: schemas/query.json
    source: ./orders
  audit:
    source: ./audit
    triggers:
      - event: { topic: order.placed, schema: schemas/placed.json }
`

// Checks made after parsing (a source directory, a schema file) point at
// the line that named the value, through Positions.
func TestPositions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "aegis.yaml")
	if err := os.WriteFile(p, []byte(positioned), 0o644); err != nil {
		t.Fatal(err)
	}
	m, pos, err := LoadWithPositions(p)
	if err != nil {
		t.Fatal(err)
	}
	for field, line := range map[string]int{
		"functions.orders.source":                         12,
		"functions.audit.source":                          14,
		"functions.orders.triggers[0].http.schema.body":   6, // the shorthand: the schema key's line
		"functions.orders.triggers[1].http.schema.query":  11,
		"functions.orders.triggers[1].http.schema.params": 10, // not written: its parent's line
		"functions.audit.triggers[0].event.schema":        16,
	} {
		if got := pos.Line(field); got != line {
			t.Errorf("Line(%s) = %d, want %d", field, got, line)
		}
	}
	err = pos.Errorf("functions.orders.source", "source directory %s does not exist", "./orders")
	if want := p + ":12: functions.orders.source: source directory ./orders does not exist"; err.Error() != want {
		t.Errorf("Errorf = %q, want %q", err, want)
	}
	if !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Errorf("a positioned error is not ErrInvalidArgument")
	}
	var none *Positions
	if got := none.Errorf("functions.x.source", "gone").Error(); got != "functions.x.source: gone" {
		t.Errorf("nil Positions: %q", got)
	}

	got := m.SchemaFields()
	want := []SchemaField{
		{"functions.audit.triggers[0].event.schema", "schemas/placed.json"},
		{"functions.orders.triggers[0].http.schema.body", "schemas/order.json"},
		{"functions.orders.triggers[1].http.schema.query", "schemas/query.json"},
	}
	equal(t, got, want)
}
