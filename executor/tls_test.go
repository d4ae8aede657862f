package executor

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
