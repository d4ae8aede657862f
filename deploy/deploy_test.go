package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/stack"
)

func TestGatewayURL(t *testing.T) {
	tests := []struct {
		flag, yaml, env, want string
	}{
		{want: "http://127.0.0.1:8080"},
		{env: "https://gw.example.com/", want: "https://gw.example.com"},
		{yaml: "http://yaml:8080", env: "http://env:8080", want: "http://yaml:8080"},
		{flag: "GW.Example.com:31112/", yaml: "http://yaml:8080", env: "http://env", want: "http://gw.example.com:31112"},
		{flag: "http://127.0.0.1:8080", yaml: "http://yaml:8080", want: "http://yaml:8080"},
		{flag: "http://127.0.0.1:8080/", env: "http://env", want: "http://env"},
		{yaml: "http://127.0.0.1:8080", env: "http://env", want: "http://env"},
	}
	for _, tt := range tests {
		if got := GatewayURL(tt.flag, tt.yaml, tt.env); got != tt.want {
			t.Errorf("GatewayURL(%q, %q, %q) = %q, want %q", tt.flag, tt.yaml, tt.env, got, tt.want)
		}
	}
}

func TestConfigDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.openfaas"},
		{map[string]string{"HOME": "/h", "CI": "true"}, ".openfaas"},
		{map[string]string{"HOME": "/h", "CI": "1", "OPENFAAS_CONFIG": "/cfg"}, "/cfg"},
		{map[string]string{"HOME": "/h", "CI": "false"}, "/h/.openfaas"},
	}
	for _, tt := range tests {
		got, err := ConfigDir(func(k string) string { return tt.env[k] })
		if err != nil || got != tt.want {
			t.Errorf("ConfigDir(%v) = %q, %v, want %q", tt.env, got, err, tt.want)
		}
	}
}

func TestLookupAuth(t *testing.T) {
	dir := t.TempDir()
	basic := BasicToken("admin", "pw\n")
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(`auths:
- gateway: http://gw.example.com:8080
  auth: basic
  token: `+basic+`
- gateway: https://pro.example.com
  auth: oauth2
  token: stored-jwt
`), 0o600)
	tests := []struct {
		gateway, token string
		want           Auth
	}{
		{"http://GW.example.com:8080/", "flag-token", Auth{Basic: basic}},
		{"https://pro.example.com", "", Auth{Bearer: "stored-jwt"}},
		{"https://pro.example.com", "flag-token", Auth{Bearer: "flag-token"}},
		{"http://other", "", Auth{}},
	}
	for _, tt := range tests {
		got, err := LookupAuth(dir, tt.gateway, tt.token)
		if err != nil || got != tt.want {
			t.Errorf("LookupAuth(%q, %q) = %+v, %v, want %+v", tt.gateway, tt.token, got, err, tt.want)
		}
	}
	if got, err := LookupAuth(t.TempDir(), "http://gw", "tok"); err != nil || got != (Auth{Bearer: "tok"}) {
		t.Errorf("LookupAuth(no config.yml) = %+v, %v", got, err)
	}
	if basic != "YWRtaW46cHc=" {
		t.Errorf("BasicToken(admin, pw) = %q, want YWRtaW46cHc=", basic)
	}
}

func TestFProcess(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "python3-http"), 0o755)
	os.WriteFile(filepath.Join(dir, "python3-http", "template.yml"), []byte("language: python3-http\nfprocess: python3 index.py\n"), 0o644)
	kiln := func(lang string) (string, bool) {
		fp, ok := map[string]string{"golang-middleware": "./handler", "python3-http": "python3 /home/app/index.py http"}[lang]
		return fp, ok
	}
	tests := []struct {
		name        string
		fn          stack.Function
		image       string
		templateDir string
		defaults    func(string) (string, bool)
		want        string
		wantErr     bool
	}{
		{name: "the stack's", fn: stack.Function{Lang: "golang-middleware", FProcess: "./custom"}, image: "./handler", templateDir: dir, defaults: kiln, want: "./custom"},
		{name: "the image's", fn: stack.Function{Lang: "python3-http"}, image: "python3 /home/app/server.py", templateDir: dir, defaults: kiln, want: "python3 /home/app/server.py"},
		{name: "the template's", fn: stack.Function{Lang: "python3-http"}, templateDir: dir, defaults: kiln, want: "python3 index.py"},
		{name: "kiln's, without a template", fn: stack.Function{Lang: "golang-middleware"}, templateDir: dir, defaults: kiln, want: "./handler"},
		{name: "a dockerfile sends none", fn: stack.Function{Lang: "dockerfile"}, templateDir: dir, defaults: kiln, want: ""},
		{name: "no template, no default", fn: stack.Function{Name: "x", Lang: "cobol"}, templateDir: dir, defaults: kiln, wantErr: true},
		{name: "no defaults at all", fn: stack.Function{Name: "x", Lang: "golang-middleware"}, templateDir: dir, wantErr: true},
		// --read-template=false: the template's fprocess is not read.
		{name: "kiln's, templates not read", fn: stack.Function{Lang: "python3-http"}, defaults: kiln, want: "python3 /home/app/index.py http"},
		{name: "none, templates not read, as faas-cli sends", fn: stack.Function{Lang: "cobol"}, defaults: kiln, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FProcess(tc.fn, tc.image, tc.templateDir, tc.defaults)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("FProcess(%+v, %q, %q) = %q, %v, want %q (error %v)", tc.fn, tc.image, tc.templateDir, got, err, tc.want, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, ErrNoFProcess) {
				t.Errorf("FProcess() = %v, want ErrNoFProcess", err)
			}
		})
	}
}

// recorded is one request the contract server saw.
type recorded struct {
	Method, Path, Auth, UserAgent, ContentType string
	Body                                       map[string]any
}

// contractServer acts as an OpenFaaS gateway that knows the functions in
// existing: PUT of an unknown function is 404, as on faas-netes and faasd.
type contractServer struct {
	mu       sync.Mutex
	existing map[string]bool
	seen     []recorded
	user     string
}

func (s *contractServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), UserAgent: r.Header.Get("User-Agent"), ContentType: r.Header.Get("Content-Type")}
	json.Unmarshal(b, &rec.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, rec)
	if u, _, ok := r.BasicAuth(); !ok || u != s.user {
		w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	name, _ := rec.Body["service"].(string)
	switch {
	case r.URL.Path != "/system/functions":
		http.NotFound(w, r)
	case r.Method == http.MethodPut && !s.existing[name]:
		http.Error(w, "not found", http.StatusNotFound)
	case r.Method == http.MethodPut:
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && s.existing[name]:
		http.Error(w, "function "+name+" already exists", http.StatusBadRequest)
	case r.Method == http.MethodPost:
		s.existing[name] = true
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodDelete:
		fn, _ := rec.Body["functionName"].(string)
		if !s.existing[fn] {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		delete(s.existing, fn)
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// TestDeployContract checks every field and header faas-cli would send,
// and PUT then POST on 404.
func TestDeployContract(t *testing.T) {
	t.Chdir(t.TempDir())
	os.WriteFile("env1.yml", []byte("environment:\n  from_file: one\n  both: file1\n"), 0o644)
	os.WriteFile("env2.yml", []byte("environment:\n  both: file2\n  flag: file2\n"), 0o644)
	os.WriteFile("stack.yml", []byte(`version: 1.0
provider:
  name: openfaas
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: localhost:5000/hello:0.1
    environment:
      inline: yes
      both: inline
      write_timeout: 20s
    environment_file: [env1.yml, env2.yml]
    secrets: [api-key]
    labels:
      com.openfaas.scale.min: 1
    annotations:
      topic: cron
    limits:
      memory: 128Mi
    requests:
      cpu: ""
    readonly_root_filesystem: true
    namespace: staging
    constraints: []
  bare:
    skip_build: true
    image: ghcr.io/openfaas/figlet
    fprocess: figlet
`), 0o644)
	sf, err := stack.Read(context.Background(), "stack.yml")
	if err != nil {
		t.Fatal(err)
	}
	srv := &contractServer{existing: map[string]bool{"bare": true}, user: "admin"}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := NewClient(ts.URL+"/", WithAuth(Auth{Basic: BasicToken("admin", "pw")}), WithUserAgent("kiln/test"), WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	o := Overrides{Env: map[string]string{"flag": "flag"}, Labels: map[string]string{"team": "a"}, Secrets: []string{"api-key", "db"}, Constraints: []string{"ignored=true"}}
	hello, err := NewDeployment(sf, sf.Functions["hello"], "localhost:5000/hello@sha256:0123", "./handler", o)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := NewDeployment(sf, sf.Functions["bare"], "ghcr.io/openfaas/figlet:latest", "figlet", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Deployment{hello, bare} {
		if code, err := c.Deploy(context.Background(), d); err != nil || code != http.StatusAccepted {
			t.Fatalf("Deploy(%s) = %d, %v", d.Service, code, err)
		}
	}
	helloBody := map[string]any{
		"service":    "hello",
		"image":      "localhost:5000/hello@sha256:0123",
		"namespace":  "staging",
		"envProcess": "./handler",
		"envVars": map[string]any{
			"inline": "yes", "both": "file2", "from_file": "one", "flag": "flag", "write_timeout": "20s",
		},
		"secrets":                []any{"api-key", "db"},
		"labels":                 map[string]any{"com.openfaas.scale.min": "1", "team": "a"},
		"annotations":            map[string]any{"topic": "cron"},
		"limits":                 map[string]any{"memory": "128Mi"},
		"readOnlyRootFilesystem": true,
	}
	bareBody := map[string]any{
		"service": "bare", "image": "ghcr.io/openfaas/figlet:latest", "envProcess": "figlet",
		"labels": map[string]any{}, "annotations": map[string]any{}, "constraints": []any{"ignored=true"},
	}
	// bare has no constraints key, so the --constraint flag would apply; it
	// was not given to bare here, so none is sent.
	delete(bareBody, "constraints")
	auth := "Basic " + BasicToken("admin", "pw")
	want := []recorded{
		{Method: "PUT", Path: "/system/functions", Auth: auth, UserAgent: "kiln/test", ContentType: "application/json", Body: helloBody},
		{Method: "POST", Path: "/system/functions", Auth: auth, UserAgent: "kiln/test", ContentType: "application/json", Body: helloBody},
		{Method: "PUT", Path: "/system/functions", Auth: auth, UserAgent: "kiln/test", ContentType: "application/json", Body: bareBody},
	}
	if diff := cmp.Diff(want, srv.seen); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	bad, _ := NewClient(ts.URL, WithAuth(Auth{Basic: BasicToken("eve", "x")}))
	_, err = bad.Deploy(context.Background(), bare)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "faas-cli login") {
		t.Errorf("Deploy(wrong credentials) = %v, want a 401 with a login hint", err)
	}
}

// TestDeployModes: faas-cli's --update=false POSTs, and --replace deletes
// the function first, whether or not it exists.
func TestDeployModes(t *testing.T) {
	tests := []struct {
		mode     Mode
		existing bool
		want     string
		wantErr  bool
	}{
		{Update, true, "PUT", false},
		{Update, false, "PUT POST", false},
		{Create, false, "POST", false},
		{Create, true, "POST", true},
		{Replace, true, "DELETE POST", false},
		{Replace, false, "DELETE POST", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%v", tt.mode, tt.existing), func(t *testing.T) {
			srv := &contractServer{existing: map[string]bool{"fn": tt.existing}, user: "admin"}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			c, err := NewClient(ts.URL, WithAuth(Auth{Basic: BasicToken("admin", "pw")}), WithMode(tt.mode))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Deploy(context.Background(), &Deployment{Service: "fn", Image: "fn:latest", Namespace: "dev"})
			var methods []string
			for _, r := range srv.seen {
				methods = append(methods, r.Method)
				if r.Method == http.MethodDelete && (r.Body["functionName"] != "fn" || r.Body["namespace"] != "dev") {
					t.Errorf("DELETE body = %v, want functionName fn and namespace dev", r.Body)
				}
			}
			if got := strings.Join(methods, " "); got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Deploy sent %s and returned %v, want %s (error %v)", got, err, tt.want, tt.wantErr)
			}
			if !tt.wantErr && !srv.existing["fn"] {
				t.Errorf("fn is not deployed after Deploy")
			}
		})
	}
}

func TestEnvironmentFileError(t *testing.T) {
	sf := &stack.File{Path: "stack.yml"}
	fn := stack.Function{Name: "x", EnvironmentFile: []string{"missing.yml"}, Line: 3, Lines: map[string]int{"environment_file": 7}}
	_, err := Environment(sf, fn, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "stack.yml:7: functions.x.environment_file:") {
		t.Errorf("Environment(missing file) = %v, want an error at stack.yml:7", err)
	}
}

// TestSaveBasicAuth: the entry faas-cli login writes, which LookupAuth
// (and faas-cli) then finds; other gateways' entries are kept.
func TestSaveBasicAuth(t *testing.T) {
	other := `auths:
- gateway: https://pro.example.com
  auth: oauth2
  token: stored-jwt
  options:
  - name: client_id
    value: abc
- gateway: http://127.0.0.1:8080
  auth: basic
  token: b2xkOm9sZA==
`
	tests := []struct {
		name     string
		existing string // "" is no file
		want     string
	}{
		{"no file", "", "auths:\n  - gateway: http://127.0.0.1:8080\n    auth: basic\n    token: YWRtaW46czNjcmV0\n"},
		{"replaces the gateway's entry, keeps the others", other, "auths:\n  - gateway: https://pro.example.com\n    auth: oauth2\n    token: stored-jwt\n    options:\n      - name: client_id\n        value: abc\n  - gateway: http://127.0.0.1:8080\n    auth: basic\n    token: YWRtaW46czNjcmV0\n"},
		{"the same entry: untouched", "# mine\nauths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46czNjcmV0\n", "# mine\nauths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46czNjcmV0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), ".openfaas")
			if tt.existing != "" {
				os.MkdirAll(dir, 0o700)
				os.WriteFile(filepath.Join(dir, "config.yml"), []byte(tt.existing), 0o600)
			}
			if err := SaveBasicAuth(dir, "HTTP://127.0.0.1:8080/", "admin", "s3cret\n"); err != nil {
				t.Fatalf("SaveBasicAuth() = %v", err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "config.yml"))
			if err != nil || string(b) != tt.want {
				t.Errorf("config.yml = %q, %v, want %q", b, err, tt.want)
			}
			if fi, err := os.Stat(filepath.Join(dir, "config.yml")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("config.yml mode = %v, %v, want 0600", fi.Mode(), err)
			}
			if fi, err := os.Stat(dir); err != nil || (tt.existing == "" && fi.Mode().Perm() != 0o700) {
				t.Errorf("config folder mode = %v, %v, want 0700", fi.Mode(), err)
			}
			if got, err := LookupAuth(dir, "http://127.0.0.1:8080", "tok"); err != nil || got != (Auth{Basic: BasicToken("admin", "s3cret")}) {
				t.Errorf("LookupAuth() after SaveBasicAuth = %+v, %v", got, err)
			}
		})
	}
}
