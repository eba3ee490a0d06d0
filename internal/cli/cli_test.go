package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/internal/sdkproxy"
)

// run executes one command line in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"deploy", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"rollback"}, "accepts 1 arg(s), received 0"},
		{[]string{"rollback", "app", "--to", "latest"}, `invalid version "latest": use a version 'aegis versions APP' lists, such as v3`},
		{[]string{"rollback", "app", "--to", "v0"}, `invalid version "v0"`},
		{[]string{"versions"}, "accepts 1 arg(s), received 0"},
		{[]string{"invoke", "app"}, "accepts 2 arg(s), received 1"},
		{[]string{"keys", "create", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"keys", "bogus"}, `unknown command "bogus"`},
		{[]string{"routes", "extra"}, `unknown command "extra"`},
		{[]string{"keys", "list", "-o", "yaml"}, "must be table or json"},
		{[]string{"server", "--drain-timeout", "soon"}, "invalid argument"},
		{[]string{"logs", "--limit", "many"}, "invalid argument"},
		{[]string{"dlq", "replay", "abc"}, "dead letter id must be a positive number"},
		{[]string{"up"}, "accepts 1 arg(s), received 0"},
		{[]string{"keys", "create", "k", "--rate", "10/d"}, `invalid rate "10/d": the period is s, m or h`},
		{[]string{"keys", "create", "k", "--rate", "ten/s"}, `invalid rate "ten/s": the count is a whole number`},
		{[]string{"keys", "create", "k", "--burst", "5"}, "--burst needs --rate"},
		{[]string{"keys", "create", "k", "--rate", "5/s", "--burst", "0"}, "--burst must be between 1 and"},
		{[]string{"keys", "create", "k", "--rate", "5/s", "--burst", "x"}, "invalid argument"},
		{[]string{"keys", "create", "k", "--budget", "1000/week"}, `invalid budget "1000/week": the period is hour, day or month`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, nil, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if !strings.HasPrefix(stderr, "aegis: ") || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "--help' for usage") {
				t.Errorf("stderr = %q, want an aegis: message with %q and a pointer to --help", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {}, {"keys"}, {"deploy", "--help"}} {
		code, stdout, stderr := run(t, nil, args...)
		if code != exitOK || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("aegis %v: code %d, stdout %q, stderr %q; want help on stdout", args, code, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := run(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "aegis ") || !strings.Contains(stdout, "engine "+sandbox.EngineName) ||
		!strings.Contains(stdout, "Go SDK "+sdkproxy.Version()) {
		t.Errorf("version: code %d, stdout %q", code, stdout)
	}
	code, stdout, _ = run(t, nil, "version", "-o", "json")
	if code != exitOK || !strings.Contains(stdout, `"version"`) || !strings.Contains(stdout, `"engine": "`+sandbox.EngineName+`"`) {
		t.Errorf("version -o json: code %d, stdout %q", code, stdout)
	}
	// --version prints the very line `aegis version` does.
	_, want, _ := run(t, nil, "version")
	for _, flag := range []string{"--version", "-v"} {
		code, stdout, stderr := run(t, nil, flag)
		if code != exitOK || stdout != want || stderr != "" {
			t.Errorf("%s: code %d, stdout %q, stderr %q; want %q", flag, code, stdout, stderr, want)
		}
	}
}

func TestMissingToken(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"keys", "list", "--data", dir},
		{"--data", dir, "deploy"},
		{"--data", dir, "invoke", "app", "fn"},
	} {
		code, stdout, stderr := run(t, nil, args...)
		if code != exitFailure {
			t.Errorf("aegis %v: exit code %d, want %d", args, code, exitFailure)
		}
		want := "aegis: no admin token: set AEGIS_TOKEN, or point --data at the data directory of a running server (" +
			filepath.Join(dir, "admin.token") + " does not exist)\n"
		if stderr != want || stdout != "" {
			t.Errorf("aegis %v: stderr %q, stdout %q; want stderr %q", args, stderr, stdout, want)
		}
	}
}

func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env, data, want, wantErr string
	}{
		{name: "file, trailing newline trimmed", data: dir, want: "file-token"},
		{name: "environment wins over the file", env: "env-token", data: dir, want: "env-token"},
		{name: "environment alone", env: "env-token", data: filepath.Join(dir, "none"), want: "env-token"},
		{name: "neither", data: filepath.Join(dir, "none"), wantErr: "no admin token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{dataDir: tt.data, env: func(k string) string {
				if k == "AEGIS_TOKEN" {
					return tt.env
				}
				return ""
			}}
			got, err := c.adminToken()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("adminToken() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEmptyTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(path, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readTokenFile(path); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("err = %v, want an empty-file error", err)
	}
}

// A refused connection says how to fix it. Nothing listens on the port:
// the listener is closed before the CLI dials it.
func TestServerNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"AEGIS_URL": "http://" + addr, "AEGIS_TOKEN": "t"}
	code, _, stderr := run(t, env, "keys", "list")
	if code != exitFailure || !strings.HasPrefix(stderr, "aegis: list keys: ") || !strings.Contains(stderr, "is the server running?") {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr has a trace: %q", stderr)
	}
}

func TestReadData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, []byte(`{"from":"file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg, stdin, want, wantErr string
	}{
		{arg: "", want: ""},
		{arg: `{"a":1}`, want: `{"a":1}`},
		{arg: "@" + path, want: `{"from":"file"}`},
		{arg: "@-", stdin: "from stdin", want: "from stdin"},
		{arg: "@", want: "@"}, // a lone @ is data, as in curl
		{arg: "@" + path + ".missing", wantErr: "read request body"},
	}
	for _, tt := range tests {
		got, err := readData(tt.arg, strings.NewReader(tt.stdin))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("readData(%q) err = %v, want %q", tt.arg, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("readData(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
		}
	}
}

// -d @missing fails before any call is made, as a failure (exit 1).
func TestInvokeMissingBodyFile(t *testing.T) {
	code, _, stderr := run(t, map[string]string{"AEGIS_TOKEN": "t"}, "invoke", "app", "fn", "-d", "@/nonexistent/body.json")
	if code != exitFailure || !strings.Contains(stderr, "aegis: read request body: ") {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
}

func TestEnv(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GONOSUMDB", "corp.example/*")
	code, stdout, stderr := run(t, nil, "env")
	proxy := filepath.Join(cache, "aegis", "goproxy")
	want := "export GOPROXY=" + shellQuote("file://"+proxy+",off") + "\nexport GONOSUMDB='corp.example/*," + sdkproxy.ModulePath + "'\n"
	if code != exitOK || stdout != want {
		t.Fatalf("aegis env: code %d\n%s\nwant\n%s%s", code, stdout, want, stderr)
	}
	if _, err := os.Stat(filepath.Join(proxy, sdkproxy.ModulePath, "@v", sdkproxy.Version()+".zip")); err != nil {
		t.Errorf("aegis env did not write the proxy it names: %v", err)
	}
}
