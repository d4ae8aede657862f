package executor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/publish"
)

// tlsSettings are the registry TLS flags: hosts not verified, and extra
// certificate authorities per host.
type tlsSettings struct {
	skipAll bool
	skip    []string
	roots   map[string]*x509.CertPool
	// clients are client certificates (mTLS) per host.
	clients map[string]tls.Certificate
}

// tlsSettings reads --skip-tls-verify (the destinations' registries),
// --skip-tls-verify-pull (every other registry: kiln cannot tell which a
// FROM names before the build, so every registry), and the
// per-registry flags.
func (f *Flags) tlsSettings(destHosts []string) (*tlsSettings, error) {
	s := &tlsSettings{skipAll: f.SkipTLSVerifyPull, roots: map[string]*x509.CertPool{}, clients: map[string]tls.Certificate{}}
	skip := slices.Clone(f.SkipTLSVerifyRegistries)
	if f.SkipTLSVerify {
		skip = append(skip, destHosts...)
	}
	for _, h := range skip {
		s.skip = append(s.skip, hostname(h))
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
	for _, v := range f.RegistryClientCerts {
		host, files, _ := strings.Cut(v, "=")
		cert, key, ok := strings.Cut(files, ",")
		if host == "" || !ok {
			return nil, usage.Errorf("--registry-client-cert %q: want HOST=CERT,KEY", v)
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--registry-client-cert %s=%s: %w", host, files, err)
		}
		s.clients[hostname(host)] = pair
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

// configFor is the TLS configuration of host: not verified, verified
// with its own authorities too, or nil for Go's default.
func (s *tlsSettings) configFor(host string) *tls.Config {
	cert, mtls := s.clients[host]
	skip := s.skipAll || slices.Contains(s.skip, host)
	if !skip && !mtls && s.roots[host] == nil {
		return nil
	}
	c := &tls.Config{RootCAs: s.roots[host], InsecureSkipVerify: skip} // the user's --skip-tls-verify*
	if mtls {
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// transport is a registry transport with the TLS settings, for fetching
// an oci:// context.
func (s *tlsSettings) transport() http.RoundTripper {
	return publish.NewTransport(publish.DefaultTimeout, publish.DefaultRetries, publish.WithTLSConfig(s.configFor))
}
