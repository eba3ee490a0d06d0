package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/cli"
	"github.com/aegis-platform/aegis/internal/server"
)

// trustingClient is an HTTP client that trusts cert as a root, and nothing
// else.
func trustingClient(cert *x509.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return rootsClient(roots)
}

func rootsClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// No overall timeout: a deploy compiles modules, which takes long
	// under -race; the tests bound themselves.
	return &http.Client{Transport: tr}
}

// rootsFromFile trusts the certificates of a PEM file, as a client given
// only the file would.
func rootsFromFile(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", path)
	}
	return roots
}

// get sends method url with the key (when set) and returns status, body
// and headers.
func get(t *testing.T, hc *http.Client, method, url, key string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// runCLI runs the real CLI in-process with env.
func runCLI(env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	selfSigned := func(c *server.Config) { c.TLSSelfSigned = true }
	in := startServerWith(t, dir, selfSigned)
	defer func() { in.close(t) }()

	for _, u := range []string{in.srv.GatewayURL(), in.srv.AdminURL()} {
		if !strings.HasPrefix(u, "https://127.0.0.1:") {
			t.Fatalf("listener URL %s, want https://127.0.0.1:…", u)
		}
	}

	certPath := filepath.Join(dir, "tls", "cert.pem")
	t.Run("files", func(t *testing.T) {
		if certPath != server.SelfSignedCertFile(dir) {
			t.Errorf("SelfSignedCertFile = %s, want %s", server.SelfSignedCertFile(dir), certPath)
		}
		block, _ := pem.Decode(mustRead(t, certPath))
		if block == nil {
			t.Fatal("cert.pem holds no PEM block")
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"127.0.0.1", "::1", "localhost"} {
			if err := cert.VerifyHostname(h); err != nil {
				t.Errorf("certificate not valid for %s: %v", h, err)
			}
		}
		if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
			t.Errorf("key type %T, want ECDSA", cert.PublicKey)
		}
		if fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key.pem: %v, want mode 0600", err)
		}
		if !bytes.Equal(cert.Raw, in.srv.Certificate().Raw) {
			t.Error("the server presents another certificate than cert.pem")
		}
	})

	deployProbe(t, in, "testdata/probe.yaml")
	k, err := in.admin.CreateKey(context.Background(), "tls")
	if err != nil {
		t.Fatal(err)
	}
	hc := rootsClient(rootsFromFile(t, certPath))

	t.Run("plain HTTP is refused", func(t *testing.T) {
		for _, u := range []string{in.srv.GatewayURL() + "/probe/echo", in.srv.AdminURL() + "/v1/health"} {
			plain := "http://" + strings.TrimPrefix(u, "https://")
			resp, err := http.Post(plain, "application/octet-stream", strings.NewReader("x"))
			if err != nil {
				continue // a refused connection is as good
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("POST %s: status %d, want 400 from the TLS listener", plain, resp.StatusCode)
			}
		}
	})

	t.Run("HTTPS with the certificate as root", func(t *testing.T) {
		st, body, hdr := get(t, hc, "POST", in.srv.GatewayURL()+"/probe/echo", k.Key, []byte("over tls"))
		if st != 200 {
			t.Fatalf("gateway: %d %s", st, body)
		}
		if hdr.Get("Strict-Transport-Security") != "max-age=31536000" || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("gateway headers: %v", hdr)
		}
		if st, _, hdr := get(t, hc, "GET", in.srv.GatewayURL()+"/nowhere", "", nil); st != 404 || hdr.Get("Strict-Transport-Security") == "" {
			t.Errorf("gateway 404: %d, HSTS %q", st, hdr.Get("Strict-Transport-Security"))
		}
		st, body, hdr = get(t, hc, "GET", in.srv.AdminURL()+"/v1/health", "", nil)
		if st != 200 || !strings.Contains(body, "ok") {
			t.Fatalf("admin health: %d %s", st, body)
		}
		for name, want := range map[string]string{
			"Strict-Transport-Security": "max-age=31536000",
			"X-Content-Type-Options":    "nosniff",
			"Referrer-Policy":           "no-referrer",
			"X-Frame-Options":           "DENY",
		} {
			if got := hdr.Get(name); got != want {
				t.Errorf("admin %s = %q, want %q", name, got, want)
			}
		}
		if st, _, hdr := get(t, hc, "GET", in.srv.AdminURL()+"/v1/apps", "wrong", nil); st != 401 || hdr.Get("Strict-Transport-Security") == "" {
			t.Errorf("admin 401: %d, HSTS %q", st, hdr.Get("Strict-Transport-Security"))
		}
	})

	t.Run("HTTPS without trusting the certificate", func(t *testing.T) {
		_, err := rootsClient(x509.NewCertPool()).Get(in.srv.AdminURL() + "/v1/health")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("untrusted certificate: %v, want an unknown authority error", err)
		}
	})

	t.Run("CLI", func(t *testing.T) {
		env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken(), "AEGIS_CA_CERT": certPath}
		if code, out, errs := runCLI(env, "apps", "list"); code != 0 || !strings.Contains(out, "probe") {
			t.Errorf("apps list with AEGIS_CA_CERT: code %d, stdout %q, stderr %q", code, out, errs)
		}

		delete(env, "AEGIS_CA_CERT")
		code, _, errs := runCLI(env, "apps", "list")
		if code != 1 || !strings.Contains(errs, "certificate") || !strings.Contains(errs, "set AEGIS_CA_CERT") {
			t.Errorf("apps list without AEGIS_CA_CERT: code %d, stderr %q; want a failure naming AEGIS_CA_CERT", code, errs)
		}

		env["AEGIS_CA_CERT"] = filepath.Join(dir, "admin.token") // a file, but no certificate
		if code, _, errs := runCLI(env, "apps", "list"); code != 1 || !strings.Contains(errs, "AEGIS_CA_CERT") || !strings.Contains(errs, "no PEM certificate") {
			t.Errorf("apps list with a bad AEGIS_CA_CERT: code %d, stderr %q", code, errs)
		}
		env["AEGIS_CA_CERT"] = filepath.Join(dir, "missing.pem")
		if code, _, errs := runCLI(env, "apps", "list"); code != 1 || !strings.Contains(errs, "read AEGIS_CA_CERT") {
			t.Errorf("apps list with a missing AEGIS_CA_CERT: code %d, stderr %q", code, errs)
		}

		// The token from the local data directory: the CLI trusts the
		// certificate next to it.
		local := map[string]string{"AEGIS_URL": in.srv.AdminURL()}
		if code, out, errs := runCLI(local, "--data", dir, "apps", "list"); code != 0 || !strings.Contains(out, "probe") {
			t.Errorf("apps list with the local data dir: code %d, stdout %q, stderr %q", code, out, errs)
		}

		local["AEGIS_URL"] = "http://" + strings.TrimPrefix(in.srv.AdminURL(), "https://")
		if code, _, errs := runCLI(local, "--data", dir, "apps", "list"); code != 1 || !strings.Contains(errs, "https://") {
			t.Errorf("apps list over http: code %d, stderr %q; want a hint to use https", code, errs)
		}
	})

	// A restart keeps the certificate, so clients that trust it keep working.
	before := mustRead(t, certPath)
	in.close(t)
	in = startServerWith(t, dir, selfSigned)
	if after := mustRead(t, certPath); !bytes.Equal(before, after) {
		t.Error("restart replaced the self-signed certificate")
	}
	if st, body, _ := get(t, hc, "POST", in.srv.GatewayURL()+"/probe/echo", k.Key, []byte("again")); st != 200 {
		t.Errorf("gateway after restart: %d %s", st, body)
	}
}

// A certificate and key from the operator: a CA this test makes signs the
// server's certificate, and clients trust the CA.
func TestTLSCertAndKey(t *testing.T) {
	dir := t.TempDir()
	caPath, certPath, keyPath := writeCAAndLeaf(t, t.TempDir())
	in := startServerWith(t, dir, func(c *server.Config) { c.TLSCert, c.TLSKey = certPath, keyPath })
	defer in.close(t)

	if _, err := os.Stat(filepath.Join(dir, "tls")); !os.IsNotExist(err) {
		t.Errorf("DATA/tls exists without --tls-self-signed: %v", err)
	}
	hc := rootsClient(rootsFromFile(t, caPath))
	st, _, hdr := get(t, hc, "GET", in.srv.AdminURL()+"/v1/health", "", nil)
	if st != 200 || hdr.Get("Strict-Transport-Security") == "" {
		t.Errorf("admin health: %d, HSTS %q", st, hdr.Get("Strict-Transport-Security"))
	}
	if st, _, hdr := get(t, hc, "GET", in.srv.GatewayURL()+"/nowhere", "", nil); st != 404 || hdr.Get("Strict-Transport-Security") == "" {
		t.Errorf("gateway: %d, HSTS %q", st, hdr.Get("Strict-Transport-Security"))
	}
	env := map[string]string{"AEGIS_URL": in.srv.AdminURL(), "AEGIS_TOKEN": in.srv.AdminToken(), "AEGIS_CA_CERT": caPath}
	if code, _, errs := runCLI(env, "keys", "list"); code != 0 {
		t.Errorf("keys list trusting the CA: code %d, stderr %q", code, errs)
	}

	// Under TLS the console's session cookie is Secure and __Host-: no
	// plain-HTTP page and no other host can read, set or shadow it.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.PostForm(in.srv.AdminURL()+"/console/login", url.Values{"token": {in.srv.AdminToken()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		session = c
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || session.Name != "__Host-aegis_console" || !session.Secure ||
		!session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" || session.Domain != "" {
		t.Errorf("console sign-in over TLS: %d, cookie %+v", resp.StatusCode, session)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("console answer over TLS without HSTS")
	}
}

// Without TLS nothing changes but the headers every response carries.
func TestPlainHeaders(t *testing.T) {
	in, _ := sharedServer(t)
	st, _, hdr := get(t, http.DefaultClient, "GET", in.srv.AdminURL()+"/v1/health", "", nil)
	if st != 200 || hdr.Get("Strict-Transport-Security") != "" {
		t.Errorf("plain admin: %d, HSTS %q; want none without TLS", st, hdr.Get("Strict-Transport-Security"))
	}
	for _, name := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
		if hdr.Get(name) == "" {
			t.Errorf("plain admin response lacks %s", name)
		}
	}
	if _, _, hdr := get(t, http.DefaultClient, "GET", in.gateway+"/nowhere", "", nil); hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("plain gateway response lacks nosniff: %v", hdr)
	}
}

// TestUpTLS runs `aegis up --tls-self-signed`: it must print https URLs and a
// curl command that trusts the written certificate.
func TestUpTLS(t *testing.T) {
	data := t.TempDir()
	up := startUp(t, "https", "../../examples/echo", "--data", data, "--tls-self-signed", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	certPath := server.SelfSignedCertFile(data)
	if !strings.Contains(up.out.String(), "curl --cacert "+certPath) {
		t.Errorf("aegis up output lacks a curl with --cacert %s:\n%s", certPath, up.out.String())
	}
	hc := rootsClient(rootsFromFile(t, certPath))
	if st, body, _ := get(t, hc, "POST", up.gateway+"/echo", up.key, []byte(`{"message":"hi"}`)); st != 200 || !strings.Contains(body, `"hi"`) {
		t.Errorf("echo through aegis up over TLS: %d %s", st, body)
	}
	up.stop(t)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeCAAndLeaf writes ca.pem, and cert.pem/key.pem for 127.0.0.1 signed
// by that CA, into dir.
func writeCAAndLeaf(t *testing.T, dir string) (caPath, certPath, keyPath string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "aegis test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "PRIVATE KEY", keyDER)
}
