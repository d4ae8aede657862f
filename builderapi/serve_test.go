package builderapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeFlagsErrors(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "key")
	if err := os.WriteFile(badKey, []byte("not base64 !"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    ServeFlags
		want string
	}{
		{"no secret file", ServeFlags{Port: 8080}, "--secret-file is required"},
		{"no build timeout", ServeFlags{Port: 8080, SecretFile: secret, Concurrency: 1, MaxBody: 1}, "--build-timeout: build timeout 0s: want more than 0"},
		{"no concurrency", ServeFlags{Port: 8080, SecretFile: secret, MaxBody: 1, Timeout: time.Minute}, "--concurrency: concurrency 0: want 1 or more"},
		{"missing secret file", ServeFlags{Port: 8080, SecretFile: filepath.Join(dir, "none")}, "--secret-file: open "},
		{"bad port", ServeFlags{Port: 70000, SecretFile: secret}, "70000"},
		{"bad key", ServeFlags{Port: 8080, SecretFile: secret, KeyFile: badKey, Concurrency: 1, MaxBody: 1, Timeout: time.Minute}, "--private-key-file " + badKey + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.server(Env{Getenv: func(string) string { return "" }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("server() = %v, want an error with %q", err, tc.want)
			}
		})
	}
	f := ServeFlags{Port: 8080, SecretFile: secret, Concurrency: 1, MaxBody: 1 << 20, Timeout: time.Minute}
	if _, err := f.server(Env{Getenv: func(string) string { return "" }}); err != nil {
		t.Errorf("server() with a secret = %v", err)
	}
}
