package githubactions

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/internal/cli"
)

type workflow struct {
	Name        string            `yaml:"name"`
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]struct {
		RunsOn string `yaml:"runs-on"`
		Steps  []struct {
			Name            string            `yaml:"name"`
			ID              string            `yaml:"id"`
			If              string            `yaml:"if"`
			ContinueOnError bool              `yaml:"continue-on-error"`
			Uses            string            `yaml:"uses"`
			Run             string            `yaml:"run"`
			With            map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// The workflow's aegis command lines parse with the real command line (an
// unknown flag or level would fail in CI the same way), the SARIF file
// the scan writes is the one uploaded, and the job may upload it.
func TestWorkflow(t *testing.T) {
	b, err := os.ReadFile("aegis-scan.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&wf); err != nil {
		t.Fatalf("aegis-scan.yml: %v", err)
	}
	if wf.Permissions["security-events"] != "write" {
		t.Error("the workflow cannot upload to code scanning: permissions.security-events is not write")
	}
	scan, ok := wf.Jobs["scan"]
	if !ok {
		t.Fatal("no scan job")
	}
	var written, uploaded string
	scans := 0
	for _, st := range scan.Steps {
		if strings.HasPrefix(st.Uses, "github/codeql-action/upload-sarif@") {
			uploaded = st.With["sarif_file"]
		}
		for line := range strings.SplitSeq(st.Run, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "aegis scan") {
				continue
			}
			scans++
			args := strings.Fields(strings.ReplaceAll(strings.TrimPrefix(line, "aegis "), `"$APP_DIR"`, wf.Env["APP_DIR"]))
			if i := slices.Index(args, ">"); i >= 0 {
				written = args[i+1]
				args = args[:i]
			}
			if code, stderr := parse(args); code != 0 {
				t.Errorf("aegis %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			if code, _ := parse(append(slices.Clone(args), "--fail-on", "severe")); code == 0 {
				t.Error("an unknown level parsed: the check proves nothing")
			}
		}
	}
	// `go install module@version` refuses a module whose go.mod has
	// replace directives, as aegis's has: the workflow must build it.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(gomod, []byte("\nreplace ")) {
		for _, st := range scan.Steps {
			if strings.Contains(st.Run, "go install github.com/aegis-platform/aegis") {
				t.Errorf("step %q installs aegis with go install, which its replace directives refuse", st.Name)
			}
		}
	}
	if scans < 2 {
		t.Errorf("%d aegis scan lines, want the SARIF scan and the failing one", scans)
	}
	if written == "" || written != uploaded {
		t.Errorf("the scan writes %q, the upload step sends %q", written, uploaded)
	}
}

// parse runs an aegis command line with --help, so nothing is scanned:
// the flags are parsed and checked as in CI.
func parse(args []string) (int, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append(slices.Clone(args), "--help"), strings.NewReader(""), &out, &errb,
		func(string) string { return "" })
	return code, errb.String()
}
