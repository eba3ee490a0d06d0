package jetstream

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noErr(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	noErr(t, err)
	cert, err := x509.ParseCertificate(der)
	noErr(t, err)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	noErr(t, os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return ca
}

// issue writes a certificate for 127.0.0.1, usable by a server and a
// client, and its key; it returns the two files.
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noErr(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	noErr(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	noErr(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	noErr(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	noErr(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

// TestClusterRoutesOverTLS: members given a certificate, its key and the
// cluster's CA form the cluster over mutual TLS and replicate; a route
// port then answers only TLS, and refuses a handshake whose client
// certificate another CA signed.
func TestClusterRoutesOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	nodes := openClusterWith(t, 3, func(i int, c *Cluster) {
		c.CertFile, c.KeyFile = ca.issue(t, dir, "m"+string(rune('1'+i)))
		c.CAFile = ca.file
	})
	b0, err := nodes[0].Bucket(testCtx(t), "over_tls", BucketOptions{History: 1})
	noErr(t, err)
	_, err = b0.Put(testCtx(t), "k", []byte("v"))
	noErr(t, err)
	b2, err := nodes[2].Bucket(testCtx(t), "over_tls", BucketOptions{History: 1})
	noErr(t, err)
	readEventually(t, b2, "k", "v")

	u, err := url.Parse(nodes[1].RouteURL())
	noErr(t, err)
	handshake := func(certFile, keyFile string) error {
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		noErr(t, err)
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		noErr(t, err)
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		tc := tls.Client(conn, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1"})
		if err := tc.Handshake(); err != nil {
			return err
		}
		// TLS 1.3 reports a refused client certificate on the first read;
		// a member's INFO comes once the handshake is done.
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "INFO ") {
			t.Errorf("after the handshake: %q", line)
		}
		return err
	}
	// In plain TCP, a route client gets nothing: no INFO, no PONG.
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	noErr(t, err)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n"))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil && (strings.HasPrefix(line, "INFO") || strings.HasPrefix(line, "PONG")) {
		t.Errorf("a plain-TCP route client was answered %q", line)
	}
	conn.Close()
	rogue := newTestCA(t, dir, "rogue")
	if err := handshake(rogue.issue(t, dir, "intruder")); err == nil {
		t.Error("a route client whose certificate another CA signed was let through the handshake")
	}
	// A certificate of the cluster's CA gets past TLS (and then meets the
	// route credentials): the refusal above is the CA's doing.
	if err := handshake(ca.issue(t, dir, "member-like")); err != nil && strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate the cluster's CA signed was refused: %v", err)
	}
}
