package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Self-signed certificates: where they live, how long they last and when a
// restart replaces one instead of reusing it.
const (
	tlsDirName            = "tls"
	selfSignedValidity    = 365 * 24 * time.Hour
	selfSignedRenewBefore = 30 * 24 * time.Hour
)

// SelfSignedCertFile is where a server started with TLSSelfSigned keeps its
// certificate; clients name this file as their CA to trust the server.
func SelfSignedCertFile(dataDir string) string {
	return filepath.Join(dataDir, tlsDirName, "cert.pem")
}

// serverTLS returns the TLS configuration both listeners share, or nil
// when cfg asks for plain HTTP.
func serverTLS(cfg Config, now time.Time) (*tls.Config, error) {
	var (
		cert tls.Certificate
		err  error
	)
	switch {
	case cfg.TLSSelfSigned:
		cert, err = selfSignedCertificate(filepath.Join(cfg.DataDir, tlsDirName), certHosts(cfg.HTTPAddr, cfg.AdminAddr), now)
		if err != nil {
			return nil, fmt.Errorf("self-signed TLS certificate: %w", err)
		}
	case cfg.TLSCert != "":
		// LoadX509KeyPair names the problem: a missing file, no PEM block,
		// or "private key does not match public key".
		cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
	default:
		return nil, nil
	}
	return &tls.Config{
		// TLS 1.2 is the oldest version without known protocol flaws; Go's
		// default cipher suites and curves for it are the modern AEAD/ECDHE
		// ones, so nothing else needs choosing here.
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

// certHosts are the names a self-signed certificate is valid for: loopback
// in every spelling, plus the host of each listen address when it names one
// (a wildcard address such as 0.0.0.0 names none).
func certHosts(addrs ...string) []string {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	for _, addr := range addrs {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" || strings.Contains(host, "%") {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			continue
		}
		host = strings.ToLower(host)
		dup := false
		for _, h := range hosts {
			dup = dup || h == host
		}
		if !dup {
			hosts = append(hosts, host)
		}
	}
	return hosts
}

// selfSignedCertificate loads the certificate kept in dir, or makes and
// stores a new one when there is none, it does not match its key, does not
// cover every host, or expires within selfSignedRenewBefore. Reusing it
// across restarts keeps clients that trust cert.pem working.
func selfSignedCertificate(dir string, hosts []string, now time.Time) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && reusable(cert.Leaf, hosts, now) {
		return cert, nil
	}
	certPEM, keyPEM, err := newSelfSigned(hosts, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("create %s: %w", dir, err)
	}
	// The key first: a crash between the two writes leaves a pair that
	// does not match, which the next start replaces.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func reusable(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if leaf == nil || now.Before(leaf.NotBefore) || leaf.NotAfter.Sub(now) < selfSignedRenewBefore {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// newSelfSigned makes an ECDSA P-256 key and a certificate for hosts
// signed by that key, both PEM-encoded.
func newSelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Aegis development"}, CommonName: "aegis self-signed"},
		// An hour of slack for clocks that are a little behind.
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(selfSignedValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Not a CA: trusting this certificate trusts this server and
		// nothing its key could sign.
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so that a reader never sees half a file and the mode is right
// before the name exists.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
