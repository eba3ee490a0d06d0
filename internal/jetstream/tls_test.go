package jetstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, as PEM files.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noErr(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aegis test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	noErr(t, err)
	ca, err := x509.ParseCertificate(caDER)
	noErr(t, err)

	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		noErr(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, ips ...net.IP) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		noErr(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		noErr(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		noErr(t, err)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", keyDER)
	}
	p := testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// startTLSServer starts a nats-server with JetStream that accepts TLS
// connections only, requiring a client certificate when verify is set, and
// returns its URL.
func startTLSServer(t *testing.T, pki testPKI, verify bool, opts server.Options) string {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: pki.serverCert, KeyFile: pki.serverKey, CaFile: pki.caFile, Verify: verify,
	})
	noErr(t, err)
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	opts.TLS, opts.TLSVerify, opts.TLSConfig, opts.TLSTimeout = true, verify, tc, 2
	srv, err := server.NewServer(&opts)
	noErr(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return "tls://" + srv.Addr().String()
}

// An external NATS that serves TLS: the node verifies it with the CA file
// (--nats-ca), presents a client certificate when the server asks for one
// (--nats-cert, --nats-key), and combines TLS with credentials.
func TestExternalTLS(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t) // a CA that did not sign the server's certificate
	tests := []struct {
		name   string
		verify bool
		srv    server.Options
		cfg    Config
		ok     bool
	}{
		{"CA", false, server.Options{}, Config{CAFile: pki.caFile}, true},
		{"CA and password", false, server.Options{Username: "aegis", Password: "s3cret"},
			Config{CAFile: pki.caFile, User: "aegis", Password: "s3cret"}, true},
		{"mutual TLS", true, server.Options{}, Config{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, true},
		{"mutual TLS without client certificate", true, server.Options{}, Config{CAFile: pki.caFile}, false},
		{"client certificate from another CA", true, server.Options{},
			Config{CAFile: pki.caFile, CertFile: other.clientCert, KeyFile: other.clientKey}, false},
		{"server not signed by the CA", false, server.Options{}, Config{CAFile: other.caFile}, false},
		{"no CA: system roots do not know the server", false, server.Options{}, Config{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL = startTLSServer(t, pki, tt.verify, tt.srv)
			n, err := Open(testCtx(t), cfg)
			if !tt.ok {
				if err == nil {
					_ = n.Close(context.Background())
					t.Fatal("Open succeeded, want a TLS failure")
				}
				if !strings.Contains(err.Error(), "tls") {
					t.Fatalf("Open: %v, want a TLS error", err)
				}
				return
			}
			noErr(t, err)
			defer func() { noErr(t, n.Close(context.Background())) }()
			b, err := n.Bucket(testCtx(t), uniq(t), BucketOptions{})
			noErr(t, err)
			_, err = b.Put(testCtx(t), "k", []byte("v"))
			noErr(t, err)
		})
	}
}
