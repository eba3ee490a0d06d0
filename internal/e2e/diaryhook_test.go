package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// diaryHookHost is the travel diary's webhook receiver
	// (examples/travel-diary/internal/diary.NotifyURL).
	diaryHookHost = "hooks.travel-diary.example"
	// diaryHookPublicIP is what the tests' resolver answers for it: an
	// address the egress filter counts as public, which the egress guard
	// never dials (it connects to the stand-in receiver on loopback).
	diaryHookPublicIP = "100.128.0.7"
	// diaryNotifyToken is the notify-token secret the tests set.
	diaryNotifyToken = "diary-notify-token-5e8c1f3a9b7d"
)

// hookReceiver is a stand-in for the diary's webhook receiver: an HTTPS
// server on loopback with a certificate for diaryHookHost from its own CA,
// recording every request.
type hookReceiver struct {
	addr  string
	roots *x509.CertPool

	mu   sync.Mutex
	seen []hookRequest
}

type hookRequest struct {
	Path, Authorization, IdempotencyKey, Body string
}

var (
	hookOnce sync.Once
	hook     *hookReceiver
	hookErr  error
)

// diaryHook starts the receiver once per test process.
func diaryHook(t testing.TB) *hookReceiver {
	t.Helper()
	hookOnce.Do(func() { hook, hookErr = startHookReceiver() })
	if hookErr != nil {
		t.Fatalf("diary webhook receiver: %v", hookErr)
	}
	return hook
}

func startHookReceiver() (*hookReceiver, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: diaryHookHost},
		DNSNames:              []string{diaryHookHost},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	h := &hookReceiver{roots: x509.NewCertPool()}
	h.roots.AddCert(cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		h.mu.Lock()
		h.seen = append(h.seen, hookRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"),
			IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: string(body)})
		h.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+diaryNotifyToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	srv.StartTLS() // on loopback; it lives as long as the test process
	h.addr = strings.TrimPrefix(srv.URL, "https://")
	return h, nil
}

// received returns the requests that announced entry id.
func (h *hookReceiver) received(id string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, r := range h.seen {
		if r.IdempotencyKey == id {
			out = append(out, r)
		}
	}
	return out
}

var (
	configDirOnce sync.Once
	configDir     string
)

// testConfigDir is the user config directory every server of this test
// process reads its default master key from, in place of the real one.
func testConfigDir(t testing.TB) string {
	t.Helper()
	configDirOnce.Do(func() {
		var err error
		if configDir, err = os.MkdirTemp("", "aegis-e2e-config-"); err != nil {
			t.Fatalf("config directory: %v", err)
		}
	})
	return configDir
}

// deployTravelDiary sets the diary's notify-token secret (when it is not
// set yet) and deploys the example with the CLI, as its README does.
func deployTravelDiary(t *testing.T, in *instance) {
	t.Helper()
	if code, out, _ := aegisCLI(t, in, "secrets", "list", "travel-diary"); code != 0 || !strings.Contains(out, "notify-token") {
		if code, _, errs := aegisCLIStdin(t, in, diaryNotifyToken, "secrets", "set", "travel-diary", "notify-token"); code != 0 {
			t.Fatalf("aegis secrets set travel-diary notify-token: exit %d %s", code, errs)
		}
	}
	if code, out, errs := aegisCLI(t, in, "deploy", "-f", "../../examples/travel-diary/aegis.yaml"); code != 0 {
		t.Fatalf("aegis deploy: exit %d\n%s\n%s", code, out, errs)
	}
}
