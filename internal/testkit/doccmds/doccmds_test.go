package doccmds

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseLine(t *testing.T) {
	for line, want := range map[string]struct {
		args  []string
		stdin string
		piped bool
		synop bool
	}{
		`aegis invoke travel-diary save-entry -d '{"text":"hello"}'`:                     {args: []string{"invoke", "travel-diary", "save-entry", "-d", `{"text":"hello"}`}},
		`echo '{"text":"hi"}' | aegis invoke travel-diary save-entry -d @-`:              {args: []string{"invoke", "travel-diary", "save-entry", "-d", "@-"}, stdin: "{\"text\":\"hi\"}\n"},
		`$ aegis logs -f -o json | jq 'select(.level == "ERROR")'`:                       {args: []string{"logs", "-f", "-o", "json"}, piped: true},
		`aegis apps list | delete APP     deployed apps`:                                 {synop: true},
		`aegis new go hello     # main.go, main_test.go`:                                 {args: []string{"new", "go", "hello"}},
		`go run ./cmd/aegis --data examples/travel-diary/.aegis logs --app travel-diary`: {args: []string{"--data", "examples/travel-diary/.aegis", "logs", "--app", "travel-diary"}},
		`aegis rollback APP               make the previous version active again`:        {synop: true},
		`aegis functions list             functions of the active versions`:              {args: []string{"functions", "list"}},
	} {
		c, ok := parseLine(line)
		if !ok {
			t.Errorf("%s: not recognized", line)
			continue
		}
		if c.Synopsis() != want.synop || c.Stdin != want.stdin || c.Piped != want.piped || (!want.synop && !equal(c.Args, want.args)) {
			t.Errorf("%s: got args %q stdin %q piped %v synopsis %v", line, c.Args, c.Stdin, c.Piped, c.Synopsis())
		}
	}
	for _, line := range []string{"aegis: gateway on http://…", "aegis.yaml  the app", "curl -s http://x"} {
		if c, ok := parseLine(line); ok {
			t.Errorf("%s: taken as a command: %+v", line, c)
		}
	}
	cmds, flags := SynopsisCommands("aegis keys create NAME [--scope S]... [--expires-in D] | list | rotate NAME [--overlap D]")
	if len(cmds) != 3 || !equal(cmds[0], []string{"keys", "create"}) || !equal(cmds[1], []string{"keys", "list"}) ||
		!equal(cmds[2], []string{"keys", "rotate"}) || !equal(flags, []string{"--scope", "--expires-in", "--overlap"}) {
		t.Errorf("SynopsisCommands: %q %q", cmds, flags)
	}
	cmds, _ = SynopsisCommands("aegis new go|c DIR [--app NAME]  write a new function")
	if len(cmds) != 1 || !equal(cmds[0], []string{"new"}) {
		t.Errorf("SynopsisCommands(new): %q", cmds)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExtractMarksShownFailures(t *testing.T) {
	dir := t.TempDir()
	doc := "```\n$ aegis rollback shop\naegis: rollback shop: no previous version\n$ aegis up .\naegis: gateway on http://127.0.0.1:8080\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds, err := Extract(dir)
	if err != nil || len(cmds) != 2 {
		t.Fatalf("Extract: %+v %v", cmds, err)
	}
	if !cmds[0].ShowsFailure || cmds[1].ShowsFailure {
		t.Errorf("ShowsFailure: %v %v, want true false", cmds[0].ShowsFailure, cmds[1].ShowsFailure)
	}
}

// A block fenced as source code holds no command, even on a line that
// starts with "aegis" (a Go import with the SDK's package name).
func TestExtractSkipsSourceBlocks(t *testing.T) {
	dir := t.TempDir()
	doc := "```go\nimport (\n\taegis \"github.com/aegis-platform/aegis/sdk/go\"\n)\n```\n\n```sh\naegis up hello\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds, err := Extract(dir)
	if err != nil || len(cmds) != 1 || cmds[0].Text != "aegis up hello" {
		t.Fatalf("Extract: %+v %v", cmds, err)
	}
}
