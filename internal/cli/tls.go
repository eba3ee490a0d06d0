package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/server"
)

// caCertEnv names a PEM file of CA certificates the CLI trusts on top of
// the system's, for an admin API whose certificate no public CA signed.
const caCertEnv = "AEGIS_CA_CERT"

// clientOptions are the admin client's TLS settings: the system's CAs plus
// the file named by AEGIS_CA_CERT and, when the token came from the local
// data directory, the certificate a self-signed server there keeps. Both
// extend trust only to servers the user already pointed the CLI at.
func (c *cli) clientOptions(localToken bool) ([]client.Option, error) {
	var extra [][]byte
	if path := c.env(caCertEnv); path != "" {
		pemBytes, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", caCertEnv, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("read %s: %s holds no PEM certificate", caCertEnv, path)
		}
		extra = append(extra, pemBytes)
	}
	if localToken {
		// Absent unless the local server ran with --tls-self-signed; a
		// broken file only means the handshake will say what is wrong.
		if pemBytes, err := os.ReadFile(server.SelfSignedCertFile(c.dataDir)); err == nil {
			extra = append(extra, pemBytes)
		}
	}
	if len(extra) == 0 {
		return nil, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, p := range extra {
		roots.AppendCertsFromPEM(p)
	}
	return []client.Option{client.WithHTTPClient(httpsClient(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))}, nil
}

// httpsClient is an HTTP client with the default transport's settings and
// the given TLS configuration.
func httpsClient(cfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}
}

// localClient is a client for a server in this process. With TLS it trusts
// exactly the certificate the server presents, under a name the certificate
// holds, since the listen address may not be one of them.
func localClient(s *server.Server, opts ...client.Option) *client.Client {
	cert := s.Certificate()
	if cert == nil {
		return client.New(s.AdminURL(), s.AdminToken(), opts...)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if u, err := url.Parse(s.AdminURL()); err == nil && cert.VerifyHostname(u.Hostname()) != nil {
		switch {
		case len(cert.DNSNames) > 0:
			cfg.ServerName = cert.DNSNames[0]
		case len(cert.IPAddresses) > 0:
			cfg.ServerName = cert.IPAddresses[0].String()
		}
	}
	return client.New(s.AdminURL(), s.AdminToken(), append(opts, client.WithHTTPClient(httpsClient(cfg)))...)
}

// tlsHint explains the TLS mistakes a CLI user makes: an untrusted
// certificate, or http:// in AEGIS_URL for a server that speaks HTTPS.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var apiErr *client.APIError
	switch {
	case errors.As(err, &unknown):
		return "\n  the server's certificate is not signed by a CA this machine trusts: set " + caCertEnv +
			" to the CA file (DATA/tls/cert.pem for a server started with --tls-self-signed)."
	case errors.As(err, &hostErr):
		return "\n  the server's certificate is not valid for " + hostErr.Host + ": set AEGIS_URL to a name it holds."
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest && strings.Contains(apiErr.Message, "HTTPS server"):
		return "\n  the server speaks HTTPS: set AEGIS_URL=https://…"
	}
	return ""
}
