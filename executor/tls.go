package executor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"

	"github.com/kiln-build/kiln/publish"
)

// tlsSettings are the registry TLS flags: hosts not verified, and extra
// certificate authorities per host.
type tlsSettings struct {
	skipAll bool
	skip    []string
	roots   map[string]*x509.CertPool
}

// tlsSettings reads --skip-tls-verify (the destinations' registries),
// --skip-tls-verify-pull (every other registry: kiln cannot tell which a
// FROM names before the build, so every registry), and the
// per-registry flags.
func (f *Flags) tlsSettings(destHosts []string) (*tlsSettings, error) {
	s := &tlsSettings{skipAll: f.SkipTLSVerifyPull, skip: slices.Clone(f.SkipTLSVerifyRegistries), roots: map[string]*x509.CertPool{}}
	if f.SkipTLSVerify {
		s.skip = append(s.skip, destHosts...)
	}
	for host, path := range f.RegistryCertificates {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--registry-certificate %s=%s: %w", host, path, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--registry-certificate %s=%s: no PEM certificate in it", host, path)
		}
		s.roots[hostname(host)] = pool
	}
	for i, h := range s.skip {
		s.skip[i] = hostname(h)
	}
	return s, nil
}

// hostname drops the port of a registry host.
func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// config is the TLS configuration, nil when no flag asks for one. Go
// verifies the chain itself unless kiln must (a host's own authorities)
// or must not (a host not verified); the server name is known only in
// VerifyConnection, so that is where the per-host choice is made.
func (s *tlsSettings) config() *tls.Config {
	if s == nil || (!s.skipAll && len(s.skip) == 0 && len(s.roots) == 0) {
		return nil
	}
	return &tls.Config{
		InsecureSkipVerify: true, // verified in VerifyConnection, host by host
		VerifyConnection: func(cs tls.ConnectionState) error {
			if s.skipAll || slices.Contains(s.skip, cs.ServerName) {
				return nil
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the registry sent no certificate")
			}
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Roots: s.roots[cs.ServerName], Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// transport is a registry transport with the TLS settings, for fetching
// an oci:// context.
func (s *tlsSettings) transport() http.RoundTripper {
	return publish.NewTransport(publish.DefaultTimeout, publish.DefaultRetries, publish.WithTLSConfig(s.config()))
}
