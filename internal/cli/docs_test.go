package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aegis-platform/aegis/internal/testkit/doccmds"
)

// TestDocumentedCommandsParse: every aegis command line in README.md,
// docs/ and the examples' READMEs, and every line of every command's
// --help Example, names commands and flags that exist, with the number of
// arguments the command takes. (internal/e2e's TestDocumentedCommandsRun
// runs the ones that can run.)
func TestDocumentedCommandsParse(t *testing.T) {
	cmds, err := doccmds.Extract("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) < 30 {
		t.Fatalf("only %d documented commands found: the extraction is broken", len(cmds))
	}
	for _, c := range cmds {
		checkDocumented(t, c)
	}
	// The examples of --help.
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, env: func(string) string { return "" }}
	var walk func(cmd *cobra.Command)
	n := 0
	walk = func(cmd *cobra.Command) {
		for i, line := range strings.Split(cmd.Example, "\n") {
			line = strings.TrimSpace(line)
			// "AEGIS_URL=… aegis deploy": the environment is not the command.
			for strings.Contains(line, "=") && !strings.HasPrefix(line, "aegis") && strings.Contains(line, " aegis ") {
				_, line, _ = strings.Cut(line, " ")
			}
			for _, part := range strings.Split(line, " && ") {
				if ex, ok := doccmds.Parse(part); ok {
					ex.File, ex.Line = "aegis "+cmd.CommandPath()+" --help, Example", i+1
					checkDocumented(t, ex)
					n++
				}
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(c.rootCommand())
	if n < 20 {
		t.Errorf("only %d --help examples found", n)
	}
}

// checkDocumented fails t unless c names a real command with real flags,
// and, for a concrete line, parses with the right number of arguments.
func checkDocumented(t *testing.T, c doccmds.Command) {
	t.Helper()
	root := (&cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, env: func(string) string { return "" }}).rootCommand()
	if c.Synopsis() {
		paths, flags := doccmds.SynopsisCommands(c.Text)
		var found []*cobra.Command
		for _, path := range paths {
			cmd, _, err := root.Find(path)
			if err != nil || cmd.CommandPath() != strings.TrimSpace("aegis "+strings.Join(path, " ")) {
				t.Errorf("%s: no command %q", c, strings.Join(path, " "))
				continue
			}
			found = append(found, cmd)
		}
		for _, f := range flags {
			name := strings.TrimLeft(f, "-")
			ok := false
			for _, cmd := range found {
				ok = ok || cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil ||
					(len(name) == 1 && cmd.Flags().ShorthandLookup(name) != nil)
			}
			if !ok && len(found) > 0 {
				t.Errorf("%s: no flag %s", c, f)
			}
		}
		return
	}
	cmd, rest, err := root.Find(c.Args)
	if err != nil {
		t.Errorf("%s: %v", c, err)
		return
	}
	if cmd.HasSubCommands() {
		t.Errorf("%s: %q needs a subcommand", c, cmd.CommandPath())
		return
	}
	cmd.SetOut(&bytes.Buffer{})
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %v", c, err)
		return
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: %v", c, err)
	}
}
