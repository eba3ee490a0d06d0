package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/internal/scan"
)

// awsKeyID is an access key id of the shape AWS issues, random each run.
func awsKeyID(t *testing.T) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AKIA" + string(b)
}

// privateKeyPEM is a private key made for this run, PEM-encoded.
func privateKeyPEM(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// noValue fails when a finding holds any part of a secret.
func noValue(t *testing.T, fs []scan.Finding, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(fs)
	for _, s := range secrets {
		for _, part := range []string{s, s[len(s)/2:], s[:len(s)/2]} {
			if len(part) >= 8 && strings.Contains(string(b), part) {
				t.Fatalf("a finding holds (part of) a secret: %s", b)
			}
		}
	}
}

// A key written into a function's source and a private key beside it are
// found by file and line, and neither value is in any finding.
func TestSourceSecretsFound(t *testing.T) {
	dir := t.TempDir()
	key := awsKeyID(t)
	pk := privateKeyPEM(t)
	must := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(filepath.Join(dir, "aegis.yaml"), "app: leaky\nfunctions:\n  orders:\n    source: ./orders\n    triggers:\n      - http: { method: POST, path: /orders }\n")
	must(filepath.Join(dir, "orders", "main.go"), "package main\n\n// Uploads go to S3.\nconst awsAccessKeyID = \""+key+"\"\n\nfunc main() {}\n")
	must(filepath.Join(dir, "orders", "deploy.pem"), pk)
	must(filepath.Join(dir, "orders", ".aegis", "build", "orders.txt"), key) // a build output: skipped
	app, err := scan.LoadApp(filepath.Join(dir, "aegis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Check(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string]scan.Finding{}
	for _, f := range fs {
		byRule[f.Rule] = f
		if f.Severity != scan.Critical || f.Function != "orders" || !strings.HasPrefix(f.ID, f.Rule+":"+f.File) {
			t.Errorf("finding %+v", f)
		}
	}
	if f, ok := byRule["secret/aws-access-token"]; !ok || f.File != "orders/main.go" || f.Line != 4 {
		t.Errorf("the AWS key: %+v (all: %+v)", f, fs)
	}
	if f, ok := byRule["secret/private-key"]; !ok || f.File != "orders/deploy.pem" || f.Line != 1 {
		t.Errorf("the private key: %+v (all: %+v)", f, fs)
	}
	if len(fs) != 2 {
		t.Errorf("%d findings, want 2 (the build output skipped): %+v", len(fs), fs)
	}
	noValue(t, fs, key, pk)
}

// The manifest and a schema file the server receives are scanned too.
func TestCheckBytes(t *testing.T) {
	key := awsKeyID(t)
	fs := CheckBytes("aegis.yaml", "", []byte("app: x\n# old credentials: "+key+"\n"))
	if len(fs) != 1 || fs[0].Line != 2 || fs[0].File != "aegis.yaml" {
		t.Fatalf("%+v", fs)
	}
	noValue(t, fs, key)
	if fs := CheckBytes("aegis.yaml", "", []byte("app: x\n")); len(fs) != 0 {
		t.Errorf("a clean manifest: %+v", fs)
	}
}

// The travel diary holds no secret.
func TestTravelDiaryClean(t *testing.T) {
	app, err := scan.LoadApp("../../../examples/travel-diary/aegis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Check(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("%+v", fs)
	}
}

// A key compiled into a Go module is found in its data; an ordinary Go
// module (the same program without it) yields nothing, so a deploy is
// never refused for the runtime's own strings.
func TestModuleSecrets(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	key := awsKeyID(t)
	build := func(src string) []byte {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/m\n\ngo 1.24\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "m.wasm")
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	leaky := build("package main\n\nimport (\"fmt\"; \"os\")\n\nvar id = \"" + key + "\"\n\nfunc main() { fmt.Fprintln(os.Stderr, len(os.Args), id) }\n")
	clean := build("package main\n\nimport (\"fmt\"; \"os\")\n\nfunc main() { fmt.Fprintln(os.Stderr, len(os.Args)) }\n")
	fs := CheckModule("orders", leaky)
	if len(fs) != 1 || fs[0].Rule != "secret/aws-access-token" || fs[0].File != "module:orders" || fs[0].Line != 0 {
		t.Fatalf("the leaky module: %+v", fs)
	}
	noValue(t, fs, key)
	if fs := CheckModule("orders", clean); len(fs) != 0 {
		t.Errorf("an ordinary Go module: %+v", fs)
	}
}

// DataSegments refuses what is not a module and reads a tiny one.
func TestDataSegments(t *testing.T) {
	for _, bad := range [][]byte{nil, []byte("\x00asm"), []byte("not wasm at all"), []byte("\x00asm\x01\x00\x00\x00\x0b\x05\x01\x00\x41")} {
		if _, err := DataSegments(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	// magic, version, data section: one active segment at i32.const 8, "hi".
	mod := []byte("\x00asm\x01\x00\x00\x00\x0b\x08\x01\x00\x41\x08\x0b\x02hi")
	got, err := DataSegments(mod)
	if err != nil || string(got) != "hi\x00" {
		t.Fatalf("%q %v", got, err)
	}
	// A component holding that module, a custom section, and a nested
	// component holding it again: both modules' data is read.
	section := func(id byte, body []byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	inner := append([]byte("\x00asm\x0d\x00\x01\x00"), section(1, mod)...)
	comp := append([]byte("\x00asm\x0d\x00\x01\x00"), section(0, []byte("\x04name"))...)
	comp = append(comp, section(1, mod)...)
	comp = append(comp, section(4, inner)...)
	got, err = DataSegments(comp)
	if err != nil || string(got) != "hi\x00hi\x00" {
		t.Fatalf("component: %q %v", got, err)
	}
	if _, err := DataSegments(append([]byte("\x00asm\x0d\x00\x01\x00"), section(1, []byte("junk"))...)); err == nil {
		t.Error("a component whose module is junk parsed")
	}
}

func FuzzDataSegments(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0b\x08\x01\x00\x41\x08\x0b\x02hi"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0b\x06\x01\x01\x02hi"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x0d\x00\x01\x00\x01\x12\x00asm\x01\x00\x00\x00\x0b\x08\x01\x00\x41\x08\x0b\x02hi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := DataSegments(b)
		if err == nil && len(out) > 2*len(b) {
			t.Fatalf("%d bytes of data from a %d-byte module", len(out), len(b))
		}
	})
}
