package report

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/scan"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var sample = []scan.Finding{
	{ID: "GO-2099-0001", Rule: "vulnerable-dependency", Severity: scan.High, Function: "orders", File: "go.mod", Line: 5,
		Message: "example.test/vulnlib v1.0.0 has GO-2099-0001; called: vulnlib.Parse", Fix: "go get example.test/vulnlib@v1.2.0"},
	{ID: "secret/aws-access-token:functions/orders/main.go:12", Rule: "secret/aws-access-token", Severity: scan.Critical,
		Function: "orders", File: "functions/orders/main.go", Line: 12, Message: "an AWS access key is written in the source"},
	{ID: "public-route-no-limit:open:0", Rule: "public-route-no-limit", Severity: scan.Medium, Function: "open",
		File: "aegis.yaml", Line: 9, Message: "a public route has no rate limit", Fix: "rate: { total: 100/s }",
		Accepted: &scan.Waiver{ID: "public-route-no-limit:open:0", Reason: "a health check"}},
	{ID: "unverifiable-module:legacy", Rule: "unverifiable-module", Severity: scan.Info, Function: "legacy",
		Message: "a prebuilt module names no dependencies"},
}

var sampleRules = []scan.Rule{
	{ID: "vulnerable-dependency", Severity: scan.High, Title: "a dependency has a known vulnerability", Fix: "upgrade it"},
	{ID: "public-route-no-limit", Severity: scan.Medium, Title: "public route without a rate limit", Fix: "add rate"},
	{ID: "events-without-schema", Severity: scan.Low, Title: "an event trigger has no schema", Fix: "add schema"},
}

func TestJSONIsAnArrayOfFindings(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no findings: %q, want []", buf.String())
	}
	buf.Reset()
	if err := JSON(&buf, sample); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sample) || got[0]["severity"] != "critical" {
		t.Fatalf("findings: %s", buf.String())
	}
	for _, f := range got {
		for _, k := range []string{"id", "rule", "severity", "function", "file", "line", "message"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding %v has no %q", f["id"], k)
			}
		}
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	if err := Text(&buf, sample, scan.High); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"CRITICAL secret/aws-access-token:functions/orders/main.go:12  functions/orders/main.go:12",
		"accepted: a health check",
		"4 findings: 1 critical, 1 high, 1 medium, 1 info; 1 accepted; 2 at or above high",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if Summary(nil, scan.High) != "no findings" {
		t.Error(Summary(nil, scan.High))
	}
}

// The SARIF log validates against the SARIF 2.1.0 schema: the schema's
// own text (as go-sarif carries it) checked by this project's JSON Schema
// validator on the bytes written, and go-sarif's validation of the log
// read back.
func TestSARIFValidates(t *testing.T) {
	var buf bytes.Buffer
	if err := SARIF(&buf, sample, sampleRules, "v0.9.0"); err != nil {
		t.Fatal(err)
	}
	schemaText := sarifSchema(t)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaText))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the SARIF log does not validate: %v\n%s", err, buf.String())
	}
	// The schema is strict enough to catch a broken log.
	var broken map[string]any
	_ = json.Unmarshal(buf.Bytes(), &broken)
	broken["version"] = "2.0.0"
	b, _ := json.Marshal(broken)
	inst2, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if sch.Validate(inst2) == nil {
		t.Error("a log of version 2.0.0 validated: the check proves nothing")
	}

	back, err := sarif.FromBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	run := back.Runs[0]
	if len(run.Results) != len(sample) || len(run.Tool.Driver.Rules) != 5 {
		t.Fatalf("results %d rules %d", len(run.Results), len(run.Tool.Driver.Rules))
	}
	var sawSuppressed, sawLine bool
	for _, r := range run.Results {
		if r.PartialFingerprints["aegisFindingId/v1"] == "" {
			t.Errorf("result %v without the finding id", *r.RuleID)
		}
		if len(r.Suppressions) > 0 {
			sawSuppressed = *r.Suppressions[0].Justification == "a health check"
		}
		if *r.RuleID == "secret/aws-access-token" {
			if r.Level != "error" {
				t.Errorf("a critical finding's level: %s", r.Level)
			}
			loc := r.Locations[0].PhysicalLocation
			sawLine = *loc.ArtifactLocation.URI == "functions/orders/main.go" && *loc.Region.StartLine == 12
		}
	}
	if !sawSuppressed || !sawLine {
		t.Errorf("suppression %v, location and line %v:\n%s", sawSuppressed, sawLine, buf.String())
	}
}

// sarifSchema is the SARIF 2.1.0 JSON schema from the go-sarif module's
// source in the module cache (the module carries it, unexported), so that
// the log is checked against the standard's schema without the project
// committing a copy.
func sarifSchema(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/owenrumney/go-sarif/v3").Output()
	if err != nil {
		t.Fatalf("find the go-sarif module: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "pkg", "report", "v210", "sarif", "schema.go"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "`")
	text, _, ok2 := strings.Cut(rest, "`")
	if !ok || !ok2 || !strings.Contains(text, "sarif-schema-2.1.0.json") {
		t.Fatal("no SARIF 2.1.0 schema in go-sarif's schema.go")
	}
	return text
}
