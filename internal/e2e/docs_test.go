package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/server"
	"github.com/aegis-platform/aegis/internal/testkit/doccmds"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
	"github.com/aegis-platform/aegis/manifest"
)

// docSkipCommands and docSkipFlags are the documented commands this test
// does not run, by command or by a flag they carry, each with why.
// Everything else in the docs runs and must exit 0.
var (
	docSkipCommands = map[string]string{
		"server":       "runs until interrupted; its flags are checked by TestDocumentedCommandsParse",
		"up":           "runs until interrupted; TestUp and TestNewGoFunctionOffline run it",
		"dev":          "runs until interrupted; TestNewGoFunctionOffline runs it",
		"new":          "writes a directory; TestNewGoFunctionOffline, TestNewCFunction and TestNewRustFunction run it",
		"dlq replay":   "needs a dead letter of that id; TestDeadLetterReplayDeliversOnce replays one",
		"guard lift":   "needs a block of that id; TestGuardBlocksBruteForce lifts one",
		"guard apply":  "needs a rule file, and would change the rules the other documented commands run under; TestGuardRuleFile applies them",
		"backup":       "writes a file and needs step-up on a server with an authenticator; TestBackupRestore runs it",
		"restore":      "builds a data directory offline; TestBackupRestore runs it",
		"cluster init": "writes the cluster's keys to a file, which the repository must never hold; the clusterjoin tests and TestCluster make them",
	}
	docSkipFlags = map[string]string{
		"--otp":   "the codes in the docs are examples; TestStepUpMFA tests step-up",
		"--token": "the tokens in the docs are examples",
	}
)

// docTrace makes the trace the docs look up (0af76519…): the README's
// upload with its traceparent, waited for until all three of its
// invocations are recorded.
func docTrace(t *testing.T, in *instance) {
	t.Helper()
	key, err := in.admin.CreateKey(context.Background(), "docs-trace")
	if err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{"title": "Porto", "text": "Bridges", "image": base64.StdEncoding.EncodeToString(samplePNG(t, 64, 48))}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	if st, body, _ := call(t, in.gateway, "POST", "/entries", key.Key, entry, "Traceparent", "00-"+traceID+"-b7ad6b7169203331-01"); st != 201 {
		t.Fatalf("the docs' traced upload: %d %s", st, body)
	}
	eventually(t, 30*time.Second, "the docs' trace to be recorded", func() bool {
		tr, err := in.admin.Trace(context.Background(), traceID)
		return err == nil && tr.Spans >= 3
	})
}

// TestDocumentedCommandsRun runs, in the order the docs give them, the
// concrete aegis commands of README.md, docs/ and the examples' READMEs
// against a real server, as a reader would, and fails on any that does not
// exit 0. Commands of an example's README run in a copy of that example's
// directory (unless they name a path from the repository's root); the others in the repository's root, except a bare `aegis
// build` or `deploy`, which the docs run in the app's directory (the
// travel diary's). The preconditions the docs assume are set up first: the
// travel diary deployed, a key "mobile-app" and a token "ci" to revoke, an
// entry.json to send. --data is dropped: the test's server is reached
// through AEGIS_URL and AEGIS_TOKEN.
func TestDocumentedCommandsRun(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := doccmds.Extract(root)
	if err != nil {
		t.Fatal(err)
	}
	// Its own master key: the docs rotate it (aegis vault rotate-master),
	// which must not change the key other servers of this process start with.
	keyDir := t.TempDir()
	in := startServerWith(t, t.TempDir(), func(c *server.Config) { c.MasterKey.ConfigDir = keyDir })
	env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken()}
	run := func(dir, stdin string, timeout time.Duration, args ...string) (int, string, string) {
		t.Helper()
		t.Chdir(dir)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var out, errb bytes.Buffer
		code := cli.Run(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
		return code, out.String(), errb.String()
	}
	must := func(args ...string) {
		t.Helper()
		if code, out, errs := run(root, "", 5*time.Minute, args...); code != 0 {
			t.Fatalf("setting up (aegis %s): exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	if code, _, errs := run(root, diaryNotifyToken, time.Minute, "secrets", "set", "travel-diary", "notify-token"); code != 0 {
		t.Fatalf("setting up (aegis secrets set): exit %d %s", code, errs)
	}
	must("deploy", "-f", "examples/travel-diary/aegis.yaml")
	deployDiaryHistory(t, in, root, 4) // for the docs' rollbacks: v2…v5
	must("keys", "create", "mobile-app")
	must("tokens", "create", "ci", "--role", "deployer")
	docTrace(t, in)

	fixtures := t.TempDir()
	schema, err := os.ReadFile(filepath.Join(root, "examples/travel-diary/schemas/new-entry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var withExamples struct{ Examples []json.RawMessage }
	if err := json.Unmarshal(schema, &withExamples); err != nil || len(withExamples.Examples) == 0 {
		t.Fatalf("new-entry.json has no example: %v", err)
	}
	entry := filepath.Join(fixtures, "entry.json")
	if err := os.WriteFile(entry, withExamples.Examples[0], 0o644); err != nil {
		t.Fatal(err)
	}
	// Each example's README runs in a copy of its directory, with what its
	// build step makes (the C example's module) already there.
	exampleDirs := map[string]string{}
	exampleDir := func(name string) string {
		if d, ok := exampleDirs[name]; ok {
			return d
		}
		d := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(d, os.DirFS(filepath.Join(root, "examples", name))); err != nil {
			t.Fatal(err)
		}
		if name == "hello-c" {
			// The README builds with -I ../../sdk/c.
			header, err := os.ReadFile(filepath.Join(root, "sdk", "c", "aegis.h"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "aegis.h"), header, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "hello.wasm"), wasmbuild.CReactor(t, filepath.Join(d, "hello.c")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if name == "hello-js" {
			// Its build uses the componentize-js scripts/test.sh
			// installed, never the network.
			if err := os.Symlink(filepath.Join(os.Getenv("AEGIS_JS_MODULES"), "node_modules"), filepath.Join(d, "node_modules")); err != nil {
				t.Fatal(err)
			}
		}
		exampleDirs[name] = d
		return d
	}

	ran := 0
	for _, c := range cmds {
		if c.Synopsis() {
			continue
		}
		jsExample := strings.HasPrefix(c.File, "examples/hello-js/")
		if jsExample && os.Getenv("AEGIS_JS_MODULES") == "" {
			if os.Getenv("AEGIS_REQUIRE_JS") != "" {
				t.Fatalf("%s: AEGIS_JS_MODULES is unset", c)
			}
			t.Logf("not run: %s (AEGIS_JS_MODULES is unset: the JavaScript example builds with componentize-js from npm, which scripts/test.sh installs)", c)
			continue
		}
		if c.ShowsFailure {
			// An error the docs show, of an app they make up; the tests
			// of that error provoke it on a real one.
			t.Logf("not run: %s (the docs show it failing)", c)
			continue
		}
		if why := skipReason(c.Args); why != "" {
			t.Logf("not run: %s (%s)", c, why)
			continue
		}
		args := dropData(c.Args)
		for i, a := range args {
			if a == "@entry.json" {
				args[i] = "@" + entry
			}
		}
		dir := root
		// An example's README speaks from the example's directory, except
		// where a command names a path from the repository's root.
		fromRoot := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "examples/") })
		if name, ok := strings.CutPrefix(c.File, "examples/"); ok && !fromRoot {
			dir = exampleDir(strings.TrimSuffix(name, "/README.md"))
		} else if (args[0] == "deploy" || args[0] == "build") && !slices.Contains(args, "-f") && len(args) == 1 {
			dir = filepath.Join(root, "examples", "travel-diary")
		}
		timeout := 5 * time.Minute
		follow := slices.Contains(args, "-f") && args[0] == "logs" || slices.Contains(args, "--follow")
		if follow {
			timeout = 2 * time.Second // following ends like Ctrl-C: exit 0
		}
		code, out, errs := run(dir, c.Stdin, timeout, args...)
		ran++
		if code != 0 {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", c, code, out, errs)
			continue
		}
		if c.Piped && slices.Contains(args, "json") {
			// What the docs pipe on is JSON, one object a line.
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Errorf("%s: not JSON: %s", c, line)
				}
			}
		}
	}
	if ran < 15 {
		t.Errorf("only %d documented commands ran", ran)
	}
}

func skipReason(args []string) string {
	var path []string
	for _, a := range dropData(args) {
		if why, ok := docSkipFlags[a]; ok {
			return why
		}
		if !strings.HasPrefix(a, "-") && len(path) < 2 {
			path = append(path, a)
		}
	}
	for n := len(path); n > 0; n-- {
		if why, ok := docSkipCommands[strings.Join(path[:n], " ")]; ok {
			return why
		}
	}
	return ""
}

// dropData removes --data DIR: the test's server is reached through the
// environment.
func dropData(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		if out[i] == "--data" && i+1 < len(out) {
			out = slices.Delete(out, i, i+2)
			i--
		}
	}
	return out
}

// deployDiaryHistory deploys n more versions of the travel diary, each with
// save-entry's timeout changed, so that the app has a history the docs'
// rollbacks can walk (a deploy of what is active records nothing).
func deployDiaryHistory(t *testing.T, in *instance, root string, n int) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(root, "examples", "travel-diary")
	text, err := os.ReadFile(filepath.Join(dir, "aegis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(filepath.Join(dir, "aegis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Every schema file, those reached by $ref included.
	files, err := filepath.Glob(filepath.Join(dir, "schemas", "*.json"))
	if err != nil || len(files) < len(m.SchemaFiles()) {
		t.Fatalf("schema files: %v %v", files, err)
	}
	schemas := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		schemas["schemas/"+filepath.Base(f)] = string(b)
	}
	versions, err := in.admin.Versions(ctx, m.App)
	if err != nil || len(versions) == 0 {
		t.Fatalf("versions of %s: %v %v", m.App, versions, err)
	}
	modules := versions[len(versions)-1].Modules
	for i := range n {
		variant := strings.Replace(string(text), "timeout: 10s,", fmt.Sprintf("timeout: %ds,", 11+i), 1)
		if variant == string(text) {
			t.Fatal("the travel diary's manifest no longer has save-entry's \"timeout: 10s,\"")
		}
		res, err := in.admin.Deploy(ctx, m.App, client.DeployRequest{Manifest: variant, File: "aegis.yaml", Modules: modules, Schemas: schemas})
		if err != nil || res.Unchanged {
			t.Fatalf("deploy variant %d: %+v %v", i, res, err)
		}
	}
}
