//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kiln-build/kiln/test/registrytest"
)

// stackProject lays out a project folder: the named samples as handler
// folders and stack.yml with the given functions section.
func stackProject(t *testing.T, samples map[string]string, stackYAML string) string {
	t.Helper()
	dir := t.TempDir()
	for name, s := range samples {
		if err := os.Rename(copySample(t, s), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(stackYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unusedRegistry is a loopback address where nothing listens, so image
// names resolve to kiln's local store without any network.
func unusedRegistry(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

// waitFunction polls the gateway until /function/name answers 200.
func waitFunction(t *testing.T, p *process, port int, name string) answer {
	t.Helper()
	deadline := time.Now().Add(2 * readyTimeout)
	for {
		a, err := call(http.MethodGet, port, "/function/"+name, "")
		if err == nil && a.status == http.StatusOK {
			return a
		}
		if !p.running() {
			t.Fatalf("kiln exited (code %d) before %s answered\n%s", p.code, name, p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/function/%s did not answer 200 within %s\n%s", name, 2*readyTimeout, p)
		}
		time.Sleep(pollEvery)
	}
}

// gatewayLogin returns the Authorization header for the local gateway on
// port, from the entry kiln wrote into faas-cli's config.yml in dir, read
// as faas-cli reads it: an exact match on the gateway URL, auth basic.
func gatewayLogin(t *testing.T, dir string, port int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.yml"))
	if err != nil {
		t.Fatalf("faas-cli's config.yml: %v", err)
	}
	var cf struct {
		Auths []struct{ Gateway, Auth, Token string } `yaml:"auths"`
	}
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("faas-cli's config.yml: %v\n%s", err, b)
	}
	for _, a := range cf.Auths {
		if a.Gateway == "http://127.0.0.1:"+strconv.Itoa(port) && a.Auth == "basic" {
			return "Basic " + a.Token
		}
	}
	t.Fatalf("faas-cli's config.yml holds no basic login for http://127.0.0.1:%d:\n%s", port, b)
	return ""
}

// callAs is call with an Authorization header and other headers.
func callAs(method string, port int, path, body string, header map[string]string) (answer, error) {
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(port)+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// processesWithEnv lists the PIDs whose environment holds kv.
func processesWithEnv(kv string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(append([]byte{0}, b...), []byte("\x00"+kv+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestStackUpLocal: kiln up --local runs a stack's functions behind the
// local gateway; kiln deploy updates one through it; Ctrl-C leaves no
// process.
func TestStackUpLocal(t *testing.T) {
	reg := unusedRegistry(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	hello, plain := "hello-"+suffix, "plain-"+suffix
	dir := stackProject(t, map[string]string{"hello": goHello, "plain": goMain}, fmt.Sprintf(`version: 1.0
provider:
  name: openfaas
functions:
  %s:
    lang: golang-middleware
    handler: ./hello
    image: %s/hello
    environment:
      greeting: from-stack
  %s:
    lang: go
    handler: ./plain
    image: %s/plain:0.1
`, hello, reg, plain, reg))
	// A function that shows what the gateway gave it: a secret mounted
	// from --secrets-dir, a read-only root but /tmp, its namespace.
	probe := "probe-" + suffix
	os.MkdirAll(filepath.Join(dir, "probe"), 0o755)
	os.WriteFile(filepath.Join(dir, "probe", "go.mod"), []byte("module handler/function\n\ngo 1.24.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "probe", "handler.go"), []byte(`package function

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	if u := r.URL.Query().Get("call"); u != "" {
		resp, err := http.Get(u)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
		return
	}
	secret, err := os.ReadFile("/var/openfaas/secrets/api-key")
	mounts, _ := os.ReadFile("/proc/self/mounts")
	root := "?"
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == "/" {
			root = strings.Split(f[3], ",")[0]
		}
	}
	tmpErr := os.WriteFile("/tmp/x", []byte("x"), 0o644)
	fmt.Fprintf(w, "secret=%s/%v root=%s tmp-writable=%v ns=%s", secret, err, root, tmpErr == nil, os.Getenv("OPENFAAS_NAMESPACE"))
}
`), 0o644)
	stackYAML, _ := os.ReadFile(filepath.Join(dir, "stack.yml"))
	stackYAML = fmt.Appendf(stackYAML, "  %s:\n    lang: golang-middleware\n    handler: ./probe\n    image: %s/probe\n    secrets: [api-key]\n    readonly_root_filesystem: true\n", probe, reg)
	os.WriteFile(filepath.Join(dir, "stack.yml"), stackYAML, 0o644)
	secrets := t.TempDir()
	os.WriteFile(filepath.Join(secrets, "api-key"), []byte("s3cret"), 0o644)

	port := freePort(t)
	o := kilnOpts{cache: warmCache, dir: dir}
	up := startProcess(t, kilnCommand(t.Context(), o, "up", "--local", "--port", strconv.Itoa(port), "--parallel", "2", "--secrets-dir", secrets))
	if a := waitFunction(t, up, port, probe); a.body != "secret=s3cret/<nil> root=ro tmp-writable=true ns=openfaas-fn" {
		t.Errorf("GET /function/%s = %q, want the secret, a read-only root with /tmp writable, the namespace", probe, a.body)
	}
	a := waitFunction(t, up, port, hello)
	if a.body != "Hello from kiln" || a.header.Get("X-Call-Id") == "" {
		t.Errorf("GET /function/%s = %q, headers %v", hello, a.body, a.header)
	}
	a, err := call(http.MethodPost, port, "/function/"+hello+"/some/path?q=1", "hi")
	if err != nil || a.status != 200 || a.body != "Hello from kiln, you said: hi" {
		t.Errorf("POST /function/%s/some/path = %+v, %v", hello, a, err)
	}
	waitFunction(t, up, port, plain)
	// One function calls another through the gateway, by its in-cluster
	// name.
	path := "/function/" + probe + "?call=" + url.QueryEscape(fmt.Sprintf("http://gateway.openfaas:%d/function/%s", port, hello))
	if a, err := call(http.MethodGet, port, path, ""); err != nil || a.body != "Hello from kiln" {
		t.Errorf("GET %s = %+v, %v, want %s's answer", path, a, err, hello)
	}
	// As faas-cli does: the login from its config.yml, which kiln wrote.
	login := map[string]string{"Authorization": gatewayLogin(t, openfaasConfig, port)}
	a, err = callAs(http.MethodGet, port, "/system/functions", "", login)
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(a.body), &list) != nil || len(list) != 3 {
		t.Fatalf("GET /system/functions = %+v, %v", a, err)
	}
	for _, f := range list {
		if img, _ := f["image"].(string); !strings.Contains(img, "@sha256:") {
			t.Errorf("function %v deployed as %q, want a digest reference", f["name"], img)
		}
	}

	// kiln deploy to the local gateway: an update by digest, env over env.
	r := kiln(t, o, "deploy", "--gateway", "http://127.0.0.1:"+strconv.Itoa(port), "--filter", hello, "-e", "greeting=from-flag")
	if r.code != 0 || !strings.Contains(r.stdout, "Deployed "+hello) {
		t.Fatalf("kiln deploy to the local gateway:\n%s", r)
	}
	a, err = callAs(http.MethodGet, port, "/system/function/"+hello, "", login)
	if err != nil || !strings.Contains(a.body, `"greeting":"from-flag"`) {
		t.Errorf("after deploy -e, GET /system/function/%s = %+v, %v", hello, a, err)
	}
	if len(processesWithEnv("OPENFAAS_NAME="+hello)) == 0 {
		t.Fatalf("no process runs %s while kiln up does", hello)
	}

	// faas-cli deploy sends the stack's tag, which kiln finds in its store.
	body := fmt.Sprintf(`{"service":%q,"image":"%s/plain:0.1","labels":{},"annotations":{}}`, plain, reg)
	if a, err := callAs(http.MethodPut, port, "/system/functions", body, login); err != nil || a.status != http.StatusAccepted {
		t.Errorf("PUT %s by tag = %+v, %v, want 202", plain, a, err)
	}
	waitFunction(t, up, port, plain)

	// Ctrl-C stops every function.
	up.cmd.Process.Signal(syscall.SIGINT)
	code, ok := up.wait(exitTimeout)
	if !ok || code != 0 {
		t.Fatalf("kiln up after SIGINT: exited %v, code %d\n%s", ok, code, up)
	}
	for _, n := range []string{hello, plain, probe} {
		if pids := processesWithEnv("OPENFAAS_NAME=" + n); len(pids) > 0 {
			t.Errorf("after kiln up exited, processes %v of %s remain", pids, n)
		}
		if !strings.Contains(up.stdout.String()+up.stderr.String(), n+" | ") {
			t.Errorf("no log line prefixed %q:\n%s", n+" | ", up)
		}
	}
}

// TestStackUpLocalReadyPath: with of-watchdog's ready_path, the local
// gateway sends a new instance no request until the watchdog's /_/ready,
// which asks the function's ready_path, answers 200: here the function's
// sixth answer.
func TestStackUpLocalReadyPath(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "warm"), 0o755)
	os.WriteFile(filepath.Join(dir, "warm", "go.mod"), []byte("module handler/function\n\ngo 1.24.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "warm", "handler.go"), []byte(`package function

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

var asks atomic.Int64

// Handle warms up: its ready_path answers 503 five times.
func Handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ready" {
		if asks.Add(1) <= 5 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	fmt.Fprintf(w, "ready asked %d times", asks.Load())
}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(`provider:
  name: openfaas
functions:
  warm:
    lang: golang-middleware
    handler: ./warm
    image: `+unusedRegistry(t)+`/warm
    build_args:
      TEST_ENABLED: "false"
    environment:
      ready_path: /ready
`), 0o644)
	port := freePort(t)
	up := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "up", "--local", "--no-auth", "--port", strconv.Itoa(port)))
	a := waitFunction(t, up, port, "warm")
	var asked int
	if _, err := fmt.Sscanf(a.body, "ready asked %d times", &asked); err != nil || asked < 6 {
		t.Errorf("first answer through the gateway = %q, want it after /ready answered 200, its sixth ask", a.body)
	}
}

// TestStackUpLocalAuth: the local gateway asks for the login faas-cli's
// config.yml holds (OPENFAAS_CONFIG honoured) on /system/*, answers 403
// to another Host and to another site's page, leaves /function/* open,
// and scales a function as faas-cli scale asks.
func TestStackUpLocalAuth(t *testing.T) {
	dir := stackProject(t, map[string]string{"hello": goHello}, `provider:
  name: openfaas
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: `+unusedRegistry(t)+`/hello
`)
	faasConfig, configHome := t.TempDir(), t.TempDir()
	port := freePort(t)
	o := kilnOpts{cache: warmCache, dir: dir, env: []string{"OPENFAAS_CONFIG=" + faasConfig, "XDG_CONFIG_HOME=" + configHome}}
	up := startProcess(t, kilnCommand(t.Context(), o, "up", "--local", "--port", strconv.Itoa(port)))
	waitFunction(t, up, port, "hello")

	login := gatewayLogin(t, faasConfig, port)
	password, err := os.ReadFile(filepath.Join(configHome, "kiln", "basic-auth-password"))
	if err != nil || login != "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+strings.TrimSpace(string(password)))) {
		t.Errorf("faas-cli's login %q, kiln's password %q (%v): want admin and that password", login, password, err)
	}
	if fi, err := os.Stat(filepath.Join(configHome, "kiln", "basic-auth-password")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the password file: %v, %v; want mode 0600", fi, err)
	}
	own := "127.0.0.1:" + strconv.Itoa(port)
	deployment := `{"service":"hello2","image":"x"}`
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
	}{
		{"no login", http.MethodGet, "/system/functions", "", nil, 401},
		{"no login, deploy", http.MethodPost, "/system/functions", deployment, nil, 401},
		{"wrong password", http.MethodGet, "/system/functions", "", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:nope"))}, 401},
		{"the login from faas-cli's config.yml", http.MethodGet, "/system/functions", "", map[string]string{"Authorization": login}, 200},
		{"a function, open", http.MethodGet, "/function/hello", "", nil, 200},
		{"healthz, open", http.MethodHead, "/healthz", "", nil, 200},
		{"metrics, open", http.MethodGet, "/metrics", "", nil, 200},
		{"foreign Host, metrics", http.MethodGet, "/metrics", "", map[string]string{"Host": "evil.example"}, 403},
		{"foreign Host", http.MethodGet, "/system/functions", "", map[string]string{"Authorization": login, "Host": "evil.example:" + strconv.Itoa(port)}, 403},
		{"foreign Host, function", http.MethodGet, "/function/hello", "", map[string]string{"Host": "evil.example"}, 403},
		{"localhost", http.MethodGet, "/system/info", "", map[string]string{"Authorization": login, "Host": "localhost:" + strconv.Itoa(port)}, 200},
		{"cross-site Origin", http.MethodPost, "/system/functions", deployment, map[string]string{"Authorization": login, "Origin": "http://evil.example", "Content-Type": "text/plain"}, 403},
		{"cross-site fetch", http.MethodGet, "/system/functions", "", map[string]string{"Authorization": login, "Sec-Fetch-Site": "cross-site"}, 403},
		{"same origin", http.MethodGet, "/system/functions", "", map[string]string{"Authorization": login, "Origin": "http://" + own}, 200},
		{"scale", http.MethodPost, "/system/scale-function/hello", `{"serviceName":"hello","replicas":2,"namespace":"openfaas-fn"}`, map[string]string{"Authorization": login}, 202},
	}
	for _, tc := range tests {
		a, err := callAs(tc.method, port, tc.path, tc.body, tc.header)
		if err != nil || a.status != tc.wantStatus {
			t.Errorf("%s: %s %s = %d %q, %v; want %d", tc.name, tc.method, tc.path, a.status, a.body, err, tc.wantStatus)
		}
	}
	a, err := callAs(http.MethodGet, port, "/system/function/hello", "", map[string]string{"Authorization": login})
	if err != nil || !strings.Contains(a.body, `"replicas":2`) || !strings.Contains(a.body, `"availableReplicas":2`) {
		t.Errorf("after scaling to 2: GET /system/function/hello = %+v, %v", a, err)
	}
	for range 4 {
		if a, err := call(http.MethodGet, port, "/function/hello", ""); err != nil || a.status != 200 {
			t.Errorf("GET /function/hello on 2 replicas = %+v, %v", a, err)
		}
	}
	if pids := processesWithEnv("OPENFAAS_NAME=hello"); len(pids) < 2 {
		t.Errorf("processes of hello: %v, want 2 replicas' at least", pids)
	}
	checkLocalMetrics(t, port)
	up.cmd.Process.Signal(syscall.SIGINT)
	if code, ok := up.wait(exitTimeout); !ok || code != 0 {
		t.Fatalf("kiln up after SIGINT: exited %v, code %d\n%s", ok, code, up)
	}
	if !strings.Contains(up.stderr.String(), "local gateway login: admin, password in "+filepath.Join(configHome, "kiln", "basic-auth-password")) {
		t.Errorf("kiln up did not say where the login is:\n%s", up)
	}
	if pids := processesWithEnv("OPENFAAS_NAME=hello"); len(pids) > 0 {
		t.Errorf("after kiln up exited, processes %v of hello remain", pids)
	}
}

// TestStackUpLocalPolyglot: kiln up --local runs a stack with a Go, a Node
// and a Python function, and the gateway hands each its requests with the
// path below /function/<name> and the query kept.
func TestStackUpLocalPolyglot(t *testing.T) {
	needBinaries(t, "node", "npm")
	reg := unusedRegistry(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	goFn, nodeFn, pyFn := "go-"+suffix, "node-"+suffix, "py-"+suffix
	dir := stackProject(t, map[string]string{"gofn": goMain, "nodefn": nodeHello, "pyfn": pyHTTP}, fmt.Sprintf(`version: 1.0
provider:
  name: openfaas
functions:
  %s:
    lang: go
    handler: ./gofn
    image: %s/gofn
  %s:
    lang: node20
    handler: ./nodefn
    image: %s/nodefn
  %s:
    lang: python3-http
    handler: ./pyfn
    image: %s/pyfn
`, goFn, reg, nodeFn, reg, pyFn, reg))
	// The Go and Node samples echo neither path nor query: make them.
	editFile(t, filepath.Join(dir, "gofn"), "main.go", "r.URL.Path)", "r.URL.RequestURI())")
	editFile(t, filepath.Join(dir, "nodefn"), "handler.js", "  if (event.method === 'POST') {",
		"  if (event.path.startsWith('/echo')) {\n    return `${event.method} ${event.path} ${JSON.stringify(event.query)}`;\n  }\n  if (event.method === 'POST') {")
	port := freePort(t)
	o := kilnOpts{cache: warmCache, dir: dir, env: pythonWheelhouse(t)}
	up := startProcess(t, kilnCommand(t.Context(), o, "up", "--local", "--port", strconv.Itoa(port), "--parallel", "2"))
	for _, n := range []string{goFn, nodeFn, pyFn} {
		waitFunction(t, up, port, n)
	}
	tests := []struct {
		method, path, body string
		wantStatus         int
		wantBody           string
	}{
		{http.MethodGet, "/function/" + goFn, "", 200, "plain main says hi on /\n"},
		{http.MethodGet, "/function/" + goFn + "/a/b?q=1&r=x%20y", "", 200, "plain main says hi on /a/b?q=1&r=x%20y\n"},
		{http.MethodGet, "/function/" + nodeFn, "", 200, "Hello from kiln on Node 20, in 1m"},
		{http.MethodPost, "/function/" + nodeFn, "hi", 200, `{"received":"hi","type":"string"}`},
		{http.MethodGet, "/function/" + nodeFn + "/echo/x?q=1&r=2", "", 200, `GET /echo/x {"q":"1","r":"2"}`},
		{http.MethodGet, "/function/" + pyFn + "?name=polyglot", "", 200, "Hello from polyglot"},
		{http.MethodPost, "/function/" + pyFn + "/any", "hi", 200, "Hello from kiln, you said: hi"},
		{http.MethodPut, "/function/" + pyFn + "/created?x=1", "x", 201, "created"},
	}
	for _, tc := range tests {
		a, err := call(tc.method, port, tc.path, tc.body)
		if err != nil || a.status != tc.wantStatus || a.body != tc.wantBody {
			t.Errorf("%s %s = %d %q, %v; want %d %q", tc.method, tc.path, a.status, a.body, err, tc.wantStatus, tc.wantBody)
		}
	}
	a, err := callAs(http.MethodGet, port, "/system/functions", "", map[string]string{"Authorization": gatewayLogin(t, openfaasConfig, port)})
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(a.body), &list) != nil || len(list) != 3 {
		t.Errorf("GET /system/functions = %+v, %v; want 3 functions", a, err)
	}

	up.cmd.Process.Signal(syscall.SIGINT)
	if code, ok := up.wait(exitTimeout); !ok || code != 0 {
		t.Fatalf("kiln up after SIGINT: exited %v, code %d\n%s", ok, code, up)
	}
	for _, n := range []string{goFn, nodeFn, pyFn} {
		if pids := processesWithEnv("OPENFAAS_NAME=" + n); len(pids) > 0 {
			t.Errorf("after kiln up exited, processes %v of %s remain", pids, n)
		}
	}
}

// contractGateway records deploy requests as an OpenFaaS gateway would see
// them, with Basic auth admin:secret.
type contractGateway struct {
	mu       sync.Mutex
	bodies   []map[string]any
	methods  []string
	existing map[string]bool
}

func (c *contractGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "secret" {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies = append(c.bodies, body)
	c.methods = append(c.methods, r.Method)
	name, _ := body["service"].(string)
	if r.Method == http.MethodPut && !c.existing[name] {
		http.NotFound(w, r)
		return
	}
	c.existing[name] = true
	w.WriteHeader(http.StatusAccepted)
}

// TestStackUpRemote: kiln up builds, pushes to the real registry and
// deploys by digest with faas-cli's JSON, credentials and PUT-then-POST.
func TestStackUpRemote(t *testing.T) {
	reg := startRegistry(t)
	gw := &contractGateway{existing: map[string]bool{}}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	cfg := t.TempDir()
	os.WriteFile(filepath.Join(cfg, "config.yml"), []byte("auths:\n- gateway: "+strings.ToLower(srv.URL)+"\n  auth: basic\n  token: YWRtaW46c2VjcmV0\n"), 0o600)
	dir := stackProject(t, map[string]string{"hello": goHello}, `version: 1.0
provider:
  name: openfaas
  gateway: `+srv.URL+`
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: ${REGISTRY}/team/hello:0.1
    environment:
      write_timeout: 20s
    environment_file: [env.yml]
    labels:
      com.openfaas.scale.min: 1
    limits:
      memory: 128Mi
    readonly_root_filesystem: true
  figlet:
    skip_build: true
    image: `+reg.Host+`/figlet
    fprocess: figlet
`)
	os.WriteFile(filepath.Join(dir, "env.yml"), []byte("environment:\n  from_file: yes\n"), 0o644)
	// --tag sha names the skip_build function's image too, as faas-cli does.
	gitEnv := append(os.Environ(), "GIT_AUTHOR_NAME=k", "GIT_AUTHOR_EMAIL=k@example.com", "GIT_COMMITTER_NAME=k", "GIT_COMMITTER_EMAIL=k@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	var sha string
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "one"}, {"rev-parse", "--short", "HEAD"}} {
		git := exec.Command("git", args...)
		git.Dir, git.Env = dir, gitEnv
		out, err := git.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		sha = strings.TrimSpace(string(out))
	}
	o := kilnOpts{cache: warmCache, dir: dir, env: []string{"OPENFAAS_CONFIG=" + cfg, "REGISTRY=" + reg.Host, "OPENFAAS_URL=http://ignored.invalid"}}
	r := kiln(t, o, "up", "--tag", "sha", "--digest-file", "digests.txt", "-e", "debug=1")
	if r.code != 0 {
		t.Fatalf("kiln up:\n%s", r)
	}
	digests, _ := os.ReadFile(filepath.Join(dir, "digests.txt"))
	ref := strings.TrimSpace(string(digests))
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(reg.Host) + `/team/hello@sha256:[0-9a-f]{64}$`).MatchString(ref) {
		t.Fatalf("digest file = %q, want %s/team/hello@sha256:...", digests, reg.Host)
	}
	want := map[string]any{
		"service": "hello", "image": ref, "envProcess": "./handler",
		"envVars":                map[string]any{"write_timeout": "20s", "from_file": "yes", "debug": "1"},
		"labels":                 map[string]any{"com.openfaas.scale.min": "1"},
		"annotations":            map[string]any{},
		"limits":                 map[string]any{"memory": "128Mi"},
		"readOnlyRootFilesystem": true,
	}
	gw.mu.Lock()
	var methods []string
	var helloBody map[string]any
	for i, b := range gw.bodies {
		methods = append(methods, gw.methods[i]+" "+fmt.Sprint(b["service"]))
		switch b["service"] {
		case "hello":
			helloBody = b
		case "figlet":
			if want := reg.Host + "/figlet:latest-" + sha; b["image"] != want {
				t.Errorf("figlet (skip_build) deployed as %v, want %s", b["image"], want)
			}
		}
	}
	if got := strings.Join(methods, ", "); got != "PUT figlet, POST figlet, PUT hello, POST hello" {
		t.Errorf("gateway saw %s, want PUT then POST for each", got)
	}
	if fmt.Sprint(helloBody) != fmt.Sprint(want) {
		t.Errorf("deploy body for hello:\n got %v\nwant %v", helloBody, want)
	}
	gw.methods = nil
	gw.mu.Unlock()

	// faas-cli's --replace: DELETE, then POST.
	if r := kiln(t, o, "deploy", "--tag", "sha", "--filter", "hello", "--replace", "--update=false"); r.code != 0 {
		t.Fatalf("kiln deploy --replace:\n%s", r)
	}
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if got := strings.Join(gw.methods, " "); got != "DELETE POST" {
		t.Errorf("kiln deploy --replace --update=false sent %s, want DELETE POST", got)
	}
}

// TestStackBuildSecrets: a build secret reaches no layer, config or
// history of the image.
func TestStackBuildSecrets(t *testing.T) {
	secret := "kiln-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dir := stackProject(t, map[string]string{"hello": goHello}, `provider:
  name: openfaas
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: localhost/hello:1
    build_secrets:
      token: ./token.txt
`)
	os.WriteFile(filepath.Join(dir, "token.txt"), []byte(secret), 0o600)
	if blobs := blobsHolding(t, dir, secret); len(blobs) > 0 {
		t.Errorf("blobs %v hold the build secret", blobs)
	}
	// Control: the same scan finds the secret once the handler ships it.
	os.WriteFile(filepath.Join(dir, "hello", "static", "token.txt"), []byte(secret), 0o644)
	if blobs := blobsHolding(t, dir, secret); len(blobs) == 0 {
		t.Errorf("the scan missed the secret in static/: it cannot fail")
	}
}

// blobsHolding builds the stack in dir into a fresh layout and returns the
// blobs (layers uncompressed, config, manifest) holding s.
func blobsHolding(t *testing.T, dir, s string) []string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layout")
	r := kiln(t, kilnOpts{cache: warmCache, dir: dir}, "build", "--output", "oci:"+out)
	if r.code != 0 {
		t.Fatalf("kiln build:\n%s", r)
	}
	blobs, _ := filepath.Glob(filepath.Join(out, "blobs", "sha256", "*"))
	if len(blobs) < 3 {
		t.Fatalf("layout holds %d blobs", len(blobs))
	}
	var found []string
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				data = plain
			}
		}
		if bytes.Contains(data, []byte(s)) {
			found = append(found, filepath.Base(b))
		}
	}
	return found
}

// devProject is a stack of one golang-middleware function, hello, with
// its tests off so that a rebuild is quick.
func devProject(t *testing.T) string {
	t.Helper()
	return stackProject(t, map[string]string{"hello": goHello}, `provider:
  name: openfaas
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: `+unusedRegistry(t)+`/hello
    build_args:
      TEST_ENABLED: false
`)
}

// TestStackDev: kiln dev --local rebuilds on save and swaps with no failed
// request, on an edit in the handler folder and, once go.mod replaces a
// module with ../lib, in ../lib; a build error keeps the last good
// version serving.
func TestStackDev(t *testing.T) {
	dir := devProject(t)
	port := freePort(t)
	dev := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "dev", "--local", "--port", strconv.Itoa(port)))
	waitFunction(t, dev, port, "hello")
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(dev.stderr.String(), "watching hello") {
		if time.Now().After(deadline) {
			t.Fatalf("kiln dev did not start watching\n%s", dev)
		}
		time.Sleep(pollEvery)
	}

	var calls, failures atomic.Int64
	var lastFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	seen := map[string]bool{}
	var seenMu sync.Mutex
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := call(http.MethodGet, port, "/function/hello", "")
			calls.Add(1)
			if err != nil || a.status != 200 {
				failures.Add(1)
				lastFailure.Store(fmt.Sprintf("%+v %v", a, err))
				continue
			}
			seenMu.Lock()
			seen[a.body] = true
			seenMu.Unlock()
		}
	})
	defer func() { close(stop); wg.Wait() }()

	waitSeen := func(greeting string) {
		t.Helper()
		deadline := time.Now().Add(readyTimeout)
		for {
			seenMu.Lock()
			ok := seen[greeting]
			seenMu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the new answer %q never came\n%s", greeting, dev)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var latencies []string
	for i, greeting := range []string{"Hello from kiln dev", "Hello again from kiln dev"} {
		old := "Hello from kiln\")"
		if i > 0 {
			old = "Hello from kiln dev\")"
		}
		editFile(t, filepath.Join(dir, "hello"), "handler.go", old, greeting+"\")")
		waitSeen(greeting)
	}
	// go.mod now replaces a module with ../lib: kiln dev watches that
	// folder too, from the build that named it.
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "lib", "go.mod"), []byte("module example.com/lib\n\ngo 1.22\n"))
	writeFile(t, filepath.Join(dir, "lib", "lib.go"), []byte("package lib\n\nconst Greeting = \"Hello from ../lib\"\n"))
	writeFile(t, filepath.Join(dir, "hello", "go.mod"), []byte("module handler/function\n\ngo 1.24.0\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n"))
	writeFile(t, filepath.Join(dir, "hello", "handler.go"), []byte("package function\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\n\t\"example.com/lib\"\n)\n\n"+
		"// Handle answers with the greeting of ../lib.\nfunc Handle(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, lib.Greeting) }\n"))
	waitSeen("Hello from ../lib")
	editFile(t, filepath.Join(dir, "lib"), "lib.go", "Hello from", "Hello again from")
	waitSeen("Hello again from ../lib")
	if !strings.Contains(dev.stderr.String(), "hello: ../lib/lib.go changed") {
		t.Errorf("kiln dev did not report the edit in ../lib\n%s", dev.stderr)
	}

	// A build error: reported, and the last good version keeps answering.
	failed := strings.Count(dev.stderr.String(), "keeps serving the last good version")
	editFile(t, filepath.Join(dir, "hello"), "handler.go", "package function", "package function oops")
	deadline = time.Now().Add(readyTimeout)
	for strings.Count(dev.stderr.String(), "keeps serving the last good version") == failed {
		if time.Now().After(deadline) {
			t.Fatalf("no build error reported\n%s", dev)
		}
		time.Sleep(pollEvery)
	}
	if !strings.Contains(dev.stderr.String(), filepath.Join(dir, "hello")) {
		t.Errorf("the build error does not name the handler folder\n%s", dev.stderr)
	}
	a, err := call(http.MethodGet, port, "/function/hello", "")
	if err != nil || a.body != "Hello again from ../lib" {
		t.Errorf("after a build error, /function/hello = %+v, %v", a, err)
	}
	for _, m := range regexp.MustCompile(`edit → ready in (\d+) ms`).FindAllStringSubmatch(dev.stderr.String(), -1) {
		latencies = append(latencies, m[1]+" ms")
	}
	t.Logf("kiln dev edit → ready (Go): %s; client loop: %d calls, %d failed", strings.Join(latencies, ", "), calls.Load(), failures.Load())
	if failures.Load() > 0 {
		t.Errorf("%d of %d calls failed across the redeploys; last: %v", failures.Load(), calls.Load(), lastFailure.Load())
	}
	if !strings.Contains(dev.stderr.String(), "rebuilt layers: handler binary") {
		t.Errorf("kiln dev did not report the rebuilt layers\n%s", dev.stderr)
	}
}

// knownLangs asks kiln which langs it builds, from its unknown-lang error.
func knownLangs(t *testing.T) []string {
	r := kiln(t, kilnOpts{cache: warmCache, dir: t.TempDir()}, "build", ".", "--lang", "no-such-lang", "--image", "x")
	_, list, ok := strings.Cut(r.stderr, "kiln builds: ")
	if !ok {
		t.Fatalf("kiln did not list its langs:\n%s", r)
	}
	// dockerfile has no pack and no scaffold: its Dockerfile names a base
	// image, which TestDockerfileFunction pushes to its registry first.
	return slices.DeleteFunc(strings.Split(strings.TrimSpace(list), ", "), func(l string) bool { return l == "dockerfile" })
}

// TestStackNew: every lang kiln builds has a scaffold, which builds and
// answers behind the local gateway.
func TestStackNew(t *testing.T) {
	for _, lang := range knownLangs(t) {
		t.Run(lang, func(t *testing.T) {
			dir := t.TempDir()
			o := kilnOpts{cache: warmCache, dir: dir}
			if strings.HasPrefix(lang, "java") {
				// The user's Maven and Gradle reach a repository.
				o.env = javaEnv(t)
			}
			if r := kiln(t, o, "new", "fn", "--lang", lang, "--prefix", unusedRegistry(t)); r.code != 0 {
				t.Fatalf("kiln new:\n%s", r)
			}
			port := freePort(t)
			up := startProcess(t, kilnCommand(t.Context(), o, "up", "--local", "--port", strconv.Itoa(port)))
			if a := waitFunction(t, up, port, "fn"); strings.TrimSpace(a.body) != "Hello from fn" {
				t.Errorf("the %s scaffold answered %q, want Hello from fn", lang, a.body)
			}
			if a, err := call(http.MethodPost, port, "/function/fn", "hi"); err != nil || strings.TrimSpace(a.body) != "Hello from fn, you said: hi" {
				t.Errorf("the %s scaffold answered POST hi with %+v, %v", lang, a, err)
			}
		})
	}
}

// TestStackParallelCold times a cold build of a 20-function stack with
// --parallel 2.
func TestStackParallelCold(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("provider:\n  name: openfaas\nfunctions:\n")
	samples := map[string]string{}
	for i := range 20 {
		name := fmt.Sprintf("fn%02d", i)
		samples[name] = goHello
		fmt.Fprintf(&sb, "  %s:\n    lang: golang-middleware\n    handler: ./%s\n    image: localhost/%s\n    build_args:\n      TEST_ENABLED: false\n", name, name, name)
	}
	dir := stackProject(t, samples, sb.String())
	// Each handler differs, so every binary is built.
	for name := range samples {
		editFile(t, filepath.Join(dir, name), "handler.go", `"Hello from kiln"`, `"Hello from `+name+`"`)
	}
	cache := t.TempDir()
	r := kiln(t, kilnOpts{cache: cache, dir: dir}, "build", "--parallel", "2", "--json")
	if r.code != 0 {
		t.Fatalf("kiln build --parallel 2:\n%s", r)
	}
	var out []struct {
		Layers []struct {
			Name   string `json:"name"`
			Cached bool   `json:"cached"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 20 {
		t.Fatalf("kiln build --json: %v, %d results", err, len(out))
	}
	built := map[string]int{}
	for _, o := range out {
		for _, l := range o.Layers {
			if !l.Cached {
				built[l.Name]++
			}
		}
	}
	t.Logf("20 functions cold, --parallel 2: %s; layers built more than once: %v", r.took.Round(time.Millisecond), dupes(built))

	// Pushing the 20 images: how often is each shared blob sent?
	reg := startRegistry(t)
	b, _ := os.ReadFile(filepath.Join(dir, "stack.yml"))
	os.WriteFile(filepath.Join(dir, "stack.yml"), bytes.ReplaceAll(b, []byte("image: localhost/"), []byte("image: "+reg.Host+"/")), 0o644)
	mark := reg.Mark()
	r = kiln(t, kilnOpts{cache: cache, dir: dir}, "build", "--parallel", "2", "--push")
	if r.code != 0 {
		t.Fatalf("kiln build --parallel 2 --push:\n%s", r)
	}
	reqs := requestsSince(t, reg, mark)
	uploads := map[string]int{}
	for _, d := range registrytest.BlobUploads(reqs) {
		uploads[d]++
	}
	most := 0
	for _, n := range uploads {
		most = max(most, n)
	}
	t.Logf("push of 20 functions, --parallel 2: %s; %d blob uploads of %d distinct blobs (a shared blob at most %d times), %d cross-repository mounts",
		r.took.Round(time.Millisecond), len(registrytest.BlobUploads(reqs)), len(uploads), most, len(registrytest.Mounts(reqs)))
}

func dupes(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v > 1 && k != "handler binary" && k != "static files" {
			out[k] = v
		}
	}
	return out
}

// TestStackBuildThenPush: kiln build into the local store, then kiln push
// sends the same digest to the registry; images with no '/' are refused.
func TestStackBuildThenPush(t *testing.T) {
	reg := startRegistry(t)
	dir := stackProject(t, map[string]string{"hello": goHello}, `provider:
  name: openfaas
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: `+reg.Host+`/hello:${TAG:-dev}
  bare:
    lang: golang-middleware
    handler: ./hello
    image: bare
`)
	o := kilnOpts{cache: warmCache, dir: dir}
	built := kiln(t, o, "build", "--filter", "hello")
	if built.code != 0 {
		t.Fatalf("kiln build:\n%s", built)
	}
	pushed := kiln(t, o, "push", "--regex", "^hel")
	if pushed.code != 0 || pushed.stdout != built.stdout {
		t.Fatalf("kiln push printed %q, want what build printed, %q\n%s", pushed.stdout, built.stdout, pushed)
	}
	if code, digest, err := reg.ManifestDigest(t.Context(), "hello", "dev"); err != nil || code != 200 || !strings.Contains(built.stdout, digest) {
		t.Errorf("registry has hello:dev as %d %s %v, want the built digest", code, digest, err)
	}
	if r := kiln(t, o, "push", "--filter", "bare"); r.code == 0 || !strings.Contains(r.stderr, "stack.yml:11: functions.bare.image") {
		t.Errorf("kiln push of an image with no '/':\n%s", r)
	}
}

// TestStackDevRemote: kiln dev without --local pushes each rebuild and
// updates the gateway by digest (here kiln's own local gateway, serving
// images from the real registry).
func TestStackDevRemote(t *testing.T) {
	reg := startRegistry(t)
	gwPort := freePort(t)
	dir := stackProject(t, map[string]string{"hello": goHello}, `provider:
  name: openfaas
  gateway: http://127.0.0.1:`+strconv.Itoa(gwPort)+`
functions:
  hello:
    lang: golang-middleware
    handler: ./hello
    image: `+reg.Host+`/hello
    build_args:
      TEST_ENABLED: false
  again:
    skip_build: true
    image: `+reg.Host+`/hello:latest
`)
	// The gateway: kiln up --local, first running hello from the local
	// store (again's image is not pushed yet, so only hello starts).
	gw := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "up", "--local", "--port", strconv.Itoa(gwPort)))
	waitFunction(t, gw, gwPort, "hello")
	dev := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "dev"))
	waitFunction(t, dev, gwPort, "hello")
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(dev.stderr.String(), "watching hello") {
		if !dev.running() || time.Now().After(deadline) {
			t.Fatalf("kiln dev did not start watching\n%s", dev)
		}
		time.Sleep(pollEvery)
	}
	// A skip_build function is deployed by its stack image, which kiln dev
	// pushed for hello.
	login := map[string]string{"Authorization": gatewayLogin(t, openfaasConfig, gwPort)}
	if a, err := callAs(http.MethodGet, gwPort, "/system/function/again", "", login); err != nil || !strings.Contains(a.body, `"image":"`+reg.Host+`/hello:latest"`) {
		t.Errorf("the gateway runs again as %+v (%v), want image %s/hello:latest\n%s", a, err, reg.Host, dev)
	}
	if a, err := call(http.MethodGet, gwPort, "/function/again", ""); err != nil || a.body != "Hello from kiln" {
		t.Errorf("GET /function/again = %+v (%v), want Hello from kiln", a, err)
	}
	editFile(t, filepath.Join(dir, "hello"), "handler.go", `"Hello from kiln"`, `"Hello from remote dev"`)
	var failures int
	deadline = time.Now().Add(readyTimeout)
	for {
		a, err := call(http.MethodGet, gwPort, "/function/hello", "")
		if err != nil || a.status != 200 {
			failures++
		} else if a.body == "Hello from remote dev" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new answer never came\n%s\n%s", dev, gw)
		}
	}
	if failures > 0 {
		t.Errorf("%d calls failed across the remote redeploy", failures)
	}
	a, _ := callAs(http.MethodGet, gwPort, "/system/function/hello", "", login)
	if !strings.Contains(a.body, reg.Host+"/hello@sha256:") {
		t.Errorf("the gateway runs %s, want the pushed digest", a.body)
	}
	if !strings.Contains(dev.stderr.String(), "edit → ready in") {
		t.Errorf("kiln dev printed no latency\n%s", dev.stderr)
	}
}

// TestStackDevFirstBuildFails: kiln dev whose first build fails says so
// and waits; the fix is built and served.
func TestStackDevFirstBuildFails(t *testing.T) {
	dir := devProject(t)
	editFile(t, filepath.Join(dir, "hello"), "handler.go", "package function", "package function oops")
	port := freePort(t)
	dev := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "dev", "--local", "--port", strconv.Itoa(port)))
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(dev.stderr.String(), "hello waits for a change that fixes it") || !strings.Contains(dev.stderr.String(), "watching hello") {
		if !dev.running() {
			t.Fatalf("kiln dev exited (code %d) after a failed first build, want it to wait for a fix\n%s", dev.code, dev)
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiln dev did not report the failed build and watch\n%s", dev)
		}
		time.Sleep(pollEvery)
	}
	editFile(t, filepath.Join(dir, "hello"), "handler.go", "package function oops", "package function")
	if a := waitFunction(t, dev, port, "hello"); !strings.Contains(a.body, "Hello from kiln") {
		t.Errorf("after the fix, /function/hello = %q, want the handler's greeting", a.body)
	}
}

// checkLocalMetrics: the gateway's /metrics counts hello's calls and
// reports the memory of each of its 2 sandboxed replicas, which the runner
// told the gateway (run.WithStarted).
func checkLocalMetrics(t *testing.T, port int) {
	t.Helper()
	a, err := call(http.MethodGet, port, "/metrics", "")
	if err != nil || a.status != 200 {
		t.Fatalf("GET /metrics = %+v, %v", a, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(a.body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, a.body)
	}
	var calls float64
	for _, m := range fams["gateway_function_invocation_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" && l.GetValue() == "200" {
				calls += m.GetCounter().GetValue()
			}
		}
	}
	if calls < 5 {
		t.Errorf("gateway_function_invocation_total{code=200} = %v, want the 5 calls at least", calls)
	}
	mem := fams["kiln_function_memory_bytes"].GetMetric()
	if len(mem) != 2 {
		t.Fatalf("kiln_function_memory_bytes = %v, want one per replica", mem)
	}
	for _, m := range mem {
		if v := m.GetGauge().GetValue(); v < 1<<20 {
			t.Errorf("kiln_function_memory_bytes%v = %v, want a process tree's MBs", m.GetLabel(), v)
		}
	}
}
