package executor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-build/kiln/project"
)

// TestRunRegistryTLS pushes to a registry whose certificate no system
// authority signed: refused unless a flag trusts it or skips the check.
func TestRunRegistryTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a"})
	tests := []struct {
		name    string
		flags   []string
		wantErr string
	}{
		{"untrusted", nil, "certificate"},
		{"registry certificate", []string{"--registry-certificate", "127.0.0.1=" + ca}, ""},
		{"skip verify", []string{"--skip-tls-verify"}, ""},
		{"skip verify for the registry", []string{"--skip-tls-verify-registry", host}, ""},
		{"another registry's certificate", []string{"--registry-certificate", "registry.example.com=" + ca}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return map[string]string{"KILN_CACHE_DIR": t.TempDir()}[k] }
			f, err := Parse(append([]string{"-c", dir, "-d", host + "/fn/tls:1"}, tc.flags...), getenv)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Run(context.Background(), f, Env{Getenv: getenv}, project.WithGetenv(getenv))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Run() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Run() = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// TestRunRegistryClientCert pushes to a registry that wants a client
// certificate: refused without --registry-client-cert, done with it.
func TestRunRegistryClientCert(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiln executor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	certPath, keyPath, caPath := filepath.Join(files, "client.pem"), filepath.Join(files, "client.key"), filepath.Join(files, "ca.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	clients := x509.NewCertPool()
	clients.AddCert(clientCert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	host := strings.TrimPrefix(srv.URL, "https://")

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a"})
	for _, tc := range []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"without", nil, false},
		{"with", []string{"--registry-client-cert", "127.0.0.1=" + certPath + "," + keyPath}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return map[string]string{"KILN_CACHE_DIR": t.TempDir()}[k] }
			f, err := Parse(append([]string{"-c", dir, "-d", host + "/fn/mtls:1", "--registry-certificate", "127.0.0.1=" + caPath}, tc.flags...), getenv)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Run(context.Background(), f, Env{Getenv: getenv}, project.WithGetenv(getenv))
			if (err == nil) != tc.ok {
				t.Errorf("Run() = %v, want success %v", err, tc.ok)
			}
		})
	}
}
