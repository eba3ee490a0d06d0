package vuln_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/scan/vuln"
)

// aegis scan on a function depending on a listed version: reported with
// the OSV id, exit 1 at --fail-on high, 0 at --fail-on none.
func TestScanRefusesAtHigh(t *testing.T) {
	vuln.FixtureProxy(t, "v1.0.0", "v1.2.0")
	app := vuln.AppAt(t, "v1.0.0")
	db, err := filepath.Abs("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"scan", app.Dir, "--vulndb", db}, args...), strings.NewReader(""), &out, &errb,
			func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	code, out, errs := run("--fail-on", "high", "-o", "json")
	if code != 1 || !strings.Contains(errs, "at or above high") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var fs []map[string]any
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fs {
		if f["id"] == "GO-2099-0001" && f["function"] == "caller" && f["severity"] == "critical" {
			found = true
		}
	}
	if !found {
		t.Errorf("GO-2099-0001 not reported for caller: %s", out)
	}
	if code, _, errs := run("--fail-on", "none"); code != 0 {
		t.Errorf("--fail-on none: exit %d %s", code, errs)
	}
}
