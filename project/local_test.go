package project

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/deploy"
)

// TestStartLocalLogin: the local gateway's login, generated once and kept,
// or from a file, saved in faas-cli's config.yml where the deploy client
// finds it; none with NoAuth.
func TestStartLocalLogin(t *testing.T) {
	given := filepath.Join(t.TempDir(), "password")
	os.WriteFile(given, []byte("  from-a-file\n"), 0o600)
	tests := []struct {
		name         string
		ls           LocalSettings
		wantPassword string // "" is generated
		wantNoAuth   bool
	}{
		{name: "generated", ls: LocalSettings{}},
		{name: "generated again: the same", ls: LocalSettings{}},
		{name: "from a file", ls: LocalSettings{PasswordFile: given}, wantPassword: "from-a-file"},
		{name: "no auth", ls: LocalSettings{NoAuth: true}, wantNoAuth: true},
	}
	home := t.TempDir()
	env := map[string]string{"HOME": home, "OPENFAAS_CONFIG": filepath.Join(home, "faas")}
	generated := ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(env["OPENFAAS_CONFIG"])
			p, rec := newProject(t, env)
			lg, err := p.StartLocal(tt.ls)
			if err != nil {
				t.Fatalf("StartLocal() = %v", err)
			}
			defer lg.Close()
			get := func(auth deploy.Auth) int {
				req, _ := http.NewRequest("GET", lg.URL+"/system/functions", nil)
				if auth.Basic != "" {
					req.Header.Set("Authorization", "Basic "+auth.Basic)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			auth, err := deploy.LookupAuth(env["OPENFAAS_CONFIG"], lg.URL, "")
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNoAuth {
				if code := get(deploy.Auth{}); code != 200 || auth.Basic != "" || len(rec.events) != 0 {
					t.Errorf("with NoAuth: GET /system/functions = %d, saved login %+v, events %v; want 200, none, none", code, auth, rec.events)
				}
				return
			}
			if code := get(deploy.Auth{}); code != 401 {
				t.Errorf("GET /system/functions without a login = %d, want 401", code)
			}
			if code := get(auth); code != 200 {
				t.Errorf("GET /system/functions with the login in faas-cli's config.yml = %d, want 200", code)
			}
			kept := filepath.Join(home, ".config", "kiln", "basic-auth-password")
			password := tt.wantPassword
			wantFile := given
			if password == "" {
				b, err := os.ReadFile(kept)
				fi, _ := os.Stat(kept)
				if err != nil || !regexp.MustCompile(`^[0-9a-f]{40}\n$`).Match(b) || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s = %q, %v, mode %v; want 40 hex digits, 0600", kept, b, err, fi.Mode())
				}
				password, wantFile = string(b[:40]), kept
				if generated != "" && password != generated {
					t.Errorf("password = %s, want the one generated before, %s", password, generated)
				}
				generated = password
			}
			if auth.Basic != deploy.BasicToken("admin", password) {
				t.Errorf("saved login = %+v, want admin and %q", auth, password)
			}
			want := GatewayLogin{URL: lg.URL, User: "admin", PasswordFile: wantFile, FaasConfig: filepath.Join(env["OPENFAAS_CONFIG"], "config.yml")}
			if len(rec.events) != 1 || rec.events[0] != Event(want) {
				t.Errorf("events = %+v, want %+v", rec.events, want)
			}
		})
	}
}

func TestStartLocalBadPasswordFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, file := range []string{empty, filepath.Join(t.TempDir(), "missing")} {
		p, _ := newProject(t, map[string]string{"HOME": t.TempDir()})
		if lg, err := p.StartLocal(LocalSettings{PasswordFile: file}); err == nil {
			lg.Close()
			t.Errorf("StartLocal(PasswordFile %s) = nil error", file)
		}
	}
}

// TestKeepPassword: processes that start at once agree on one password.
func TestKeepPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln", "basic-auth-password")
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = keepPassword(path); err != nil {
				t.Errorf("keepPassword() = %v", err)
			}
		})
	}
	wg.Wait()
	for _, pw := range got {
		if pw == "" || pw != got[0] {
			t.Fatalf("keepPassword() at once = %q, want one password", got)
		}
	}
	os.Chmod(path, 0o644)
	if pw, err := keepPassword(path); err != nil || pw != got[0] {
		t.Errorf("keepPassword() again = %q, %v, want %q", pw, err, got[0])
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 again", fi.Mode())
	}
}

func TestConfigDir(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/kiln", false},
		{map[string]string{"HOME": "/h"}, "/h/.config/kiln", false},
		{map[string]string{}, "", true},
	}
	for _, tt := range tests {
		got, err := ConfigDir(func(k string) string { return tt.env[k] })
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ConfigDir(%v) = %q, %v, want %q", tt.env, got, err, tt.want)
		}
	}
}
