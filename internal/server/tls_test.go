package server

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" means valid
	}{
		{"defaults", Config{}, ""},
		{"cert and key", Config{TLSCert: "c.pem", TLSKey: "k.pem"}, ""},
		{"self-signed", Config{TLSSelfSigned: true}, ""},
		{"cert without key", Config{TLSCert: "c.pem"}, "--tls-cert and --tls-key go together"},
		{"key without cert", Config{TLSKey: "k.pem"}, "--tls-cert and --tls-key go together"},
		{"self-signed and cert", Config{TLSSelfSigned: true, TLSCert: "c.pem", TLSKey: "k.pem"}, "--tls-self-signed and --tls-cert exclude each other"},
		{"nats and listen", Config{NATSURL: "nats://h", NATSListen: ":4222"}, "--nats and --nats-listen exclude each other"},
		{"nats cert without key", Config{NATSURL: "tls://h", NATSCert: "c.pem"}, "--nats-cert and --nats-key go together"},
		{"nats TLS", Config{NATSURL: "tls://h", NATSCA: "ca.pem", NATSCert: "c.pem", NATSKey: "k.pem", NATSCreds: "a.creds"}, ""},
		{"nats CA without nats", Config{NATSCA: "ca.pem"}, "apply to an external NATS only"},
		{"nats password without nats", Config{NATSUser: "u", NATSPassword: "p"}, "apply to an external NATS only"},
		{"route TLS without a cluster", Config{ClusterCert: "c.pem", ClusterKey: "k.pem", ClusterCA: "ca.pem"}, "encrypt a cluster's routes"},
		{"route TLS without its CA", Config{ClusterName: "c", ClusterListen: "127.0.0.1:0", ClusterPeers: []string{"nats-route://127.0.0.1:6222"},
			ClusterJoin: "j", ClusterCert: "c.pem", ClusterKey: "k.pem"}, "--cluster-cert, --cluster-key and --cluster-ca go together"},
		{"gate level", Config{Gate: Gate{FailOn: "severe"}}, "--deploy-fail-on"},
		{"gate off", Config{Gate: Gate{FailOn: "none"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "configure server: ")):
				t.Fatalf("New: %v, want a configure server error with %q", err, tt.want)
			}
		})
	}
}

// Files that cannot be loaded are a start-up error naming them and the
// reason, before anything else is started.
func TestServerTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, err := newSelfSigned([]string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, keyB, err := newSelfSigned([]string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, otherKey := write("cert.pem", certA), write("key.pem", keyA), write("other.pem", keyB)
	garbage := write("garbage.pem", []byte("not pem"))
	tests := []struct {
		name, cert, key, want string
	}{
		{"missing cert", filepath.Join(dir, "nope.pem"), key, "no such file"},
		{"missing key", cert, filepath.Join(dir, "nope.pem"), "no such file"},
		{"not PEM", garbage, key, "failed to find any PEM data"},
		{"mismatched", cert, otherKey, "private key does not match public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serverTLS(Config{TLSCert: tt.cert, TLSKey: tt.key}, time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.cert) {
				t.Fatalf("serverTLS: %v, want an error naming %s and %q", err, tt.cert, tt.want)
			}
		})
	}
	cfg, err := serverTLS(Config{TLSCert: cert, TLSKey: key}, time.Now())
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
		t.Fatalf("serverTLS with a good pair: %+v, %v", cfg, err)
	}
}

func TestCertHosts(t *testing.T) {
	got := certHosts("127.0.0.1:8080", "0.0.0.0:8081", "[::]:1", "Aegis.Example:443", "10.1.2.3:0", "[fe80::1%eth0]:80", "aegis.example:1")
	want := "127.0.0.1 ::1 localhost aegis.example 10.1.2.3"
	if strings.Join(got, " ") != want {
		t.Errorf("certHosts = %v, want %s", got, want)
	}
}

func TestSelfSignedReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	first, err := selfSignedCertificate(dir, hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := first.Leaf
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate not valid for %s: %v", h, err)
		}
	}
	if d := leaf.NotAfter.Sub(now); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("validity %s, want a year", d)
	}
	if leaf.IsCA {
		t.Error("self-signed certificate is a CA; trusting it should trust this server only")
	}
	for name, mode := range map[string]os.FileMode{"cert.pem": 0o644, "key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v; want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("tls dir: %v, want mode 0700", err)
	}

	same := func(c tls.Certificate) bool { return bytes.Equal(c.Leaf.Raw, leaf.Raw) }
	again, err := selfSignedCertificate(dir, hosts, now.Add(300*24*time.Hour))
	if err != nil || !same(again) {
		t.Errorf("restart within the validity: new certificate (err %v), want the stored one", err)
	}
	renewed, err := selfSignedCertificate(dir, hosts, now.Add(340*24*time.Hour))
	if err != nil || same(renewed) {
		t.Errorf("restart 25 days before expiry: same certificate (err %v), want a new one", err)
	}
	wider, err := selfSignedCertificate(dir, append(hosts, "aegis.test"), now)
	if err != nil || wider.Leaf.VerifyHostname("aegis.test") != nil {
		t.Errorf("restart on a new host name: %v, want a certificate for it", err)
	}
}

func TestSecurityHeaders(t *testing.T) {
	weaken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What a function's response headers could try.
		w.Header().Set("Strict-Transport-Security", "max-age=0")
		w.Header().Set("X-Content-Type-Options", "sniff")
		if r.URL.Path == "/stream" {
			w.(http.Flusher).Flush()
		}
		if r.URL.Path != "/empty" {
			_, _ = w.Write([]byte("hi"))
		}
	})
	for _, tt := range []struct {
		name    string
		headers http.Header
		want    map[string]string
	}{
		{"gateway plain", gatewayHeaders(false), map[string]string{"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=0", "X-Frame-Options": ""}},
		{"gateway TLS", gatewayHeaders(true), map[string]string{"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": hstsValue, "X-Frame-Options": ""}},
		{"admin plain", adminHeaders(false), map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}},
		{"admin TLS", adminHeaders(true), map[string]string{"Strict-Transport-Security": hstsValue, "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}},
	} {
		for _, path := range []string{"/", "/stream", "/empty"} {
			t.Run(tt.name+path, func(t *testing.T) {
				rec := httptest.NewRecorder()
				withHeaders(weaken, tt.headers).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				for k, v := range tt.want {
					if got := rec.Result().Header.Get(k); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			})
		}
	}
}

func TestStartRefusesBadCertificate(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	s, err := New(Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", TLSCert: missing, TLSKey: missing})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "start: load TLS certificate "+missing) {
		t.Fatalf("Start: %v, want a start error naming %s", err, missing)
	}
	if s.GatewayURL() != "" {
		t.Error("a listener is open after a failed start")
	}
}
