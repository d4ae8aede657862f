package registrytest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of every wait in this package.
const (
	startTimeout = 15 * time.Second
	syncTimeout  = 10 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 20 * time.Millisecond
	startTries   = 3
	keptLogLines = 40
)

// Option configures Start.
type Option func(*options)

type options struct {
	binary         string
	user, password string
}

// WithBinary sets the registry executable. The default is docker-registry,
// found on PATH.
func WithBinary(path string) Option { return func(o *options) { o.binary = path } }

// WithHtpasswd makes the registry require HTTP basic authentication with
// this user and password (distribution's htpasswd auth, bcrypt entries; see
// HtpasswdLine). The default is no authentication.
func WithHtpasswd(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

// Registry is a running distribution registry.
type Registry struct {
	// Host is HOST:PORT, always on 127.0.0.1.
	Host string

	cmd    *exec.Cmd
	exited chan struct{}
	opts   options
	client *http.Client

	mu      sync.Mutex
	reqs    []Request
	tail    []string // the last lines that are not access log lines
	syncSeq int
	stopped bool
}

// Start starts a registry storing its data under dir, which the caller
// removes, and returns once it answers /v2/. A port taken between choosing
// and binding it is retried with another port.
func Start(ctx context.Context, dir string, opts ...Option) (*Registry, error) {
	o := options{binary: "docker-registry"}
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath(o.binary)
	if err != nil {
		return nil, fmt.Errorf("finding the registry (Debian package docker-registry): %w", err)
	}
	var errs []error
	for try := range startTries {
		r, err := start(ctx, bin, filepath.Join(dir, strconv.Itoa(try)), o)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("starting %s: %w", bin, errors.Join(errs...))
}

func start(ctx context.Context, bin, dir string, o options) (*Registry, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	var auth string
	if o.user != "" {
		line, err := HtpasswdLine(o.user, o.password)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: registrytest\n    path: %s\n", path)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: registrytest-not-a-secret
%s`, filepath.Join(dir, "data"), host, auth)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", configPath)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	r := &Registry{
		Host:   host,
		cmd:    cmd,
		exited: make(chan struct{}),
		opts:   o,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		r.readLog(pr)
	}()
	go func() {
		_ = cmd.Wait()
		<-logDone
		close(r.exited)
	}()

	if err := r.waitUp(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("registry on %s: %w\n%s", host, err, r.Log())
	}
	return r, nil
}

// waitUp polls /v2/ until the registry answers (200, or 401 with auth).
func (r *Registry) waitUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL("/v2/"), nil)
		if err != nil {
			return err
		}
		resp, err := r.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-r.exited:
			return errors.New("exited before answering /v2/")
		case <-ctx.Done():
			return fmt.Errorf("no answer on /v2/ within %s: %w", startTimeout, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

func (r *Registry) readLog(rd io.ReadCloser) {
	defer rd.Close()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		req, ok := ParseAccessLine(line)
		r.mu.Lock()
		if ok {
			r.reqs = append(r.reqs, req)
		} else {
			r.tail = append(r.tail, line)
			if len(r.tail) > keptLogLines {
				r.tail = r.tail[len(r.tail)-keptLogLines:]
			}
		}
		r.mu.Unlock()
	}
}

// URL returns the registry's URL for path, e.g. URL("/v2/").
func (r *Registry) URL(path string) string { return "http://" + r.Host + path }

// Log returns the last lines the registry logged that are not access log
// lines, for failure messages.
func (r *Registry) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.tail, "\n")
}

// Close stops the registry: SIGTERM, then SIGKILL if it does not exit.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	r.mu.Unlock()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("registry pid %d did not exit", r.cmd.Process.Pid)
	}
}

// Mark returns a position in the access log; Since returns the requests
// logged after it.
func (r *Registry) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

const syncParam = "registrytest-sync"

// Since returns the requests the registry has logged since mark. It first
// sends a request of its own and waits for its access log line, so every
// request that completed before the call is included.
func (r *Registry) Since(ctx context.Context, mark int) ([]Request, error) {
	r.mu.Lock()
	r.syncSeq++
	token := strconv.Itoa(r.syncSeq)
	r.mu.Unlock()
	resp, err := r.do(ctx, http.MethodGet, "/v2/?"+syncParam+"="+token, nil)
	if err != nil {
		return nil, fmt.Errorf("syncing with the access log: %w", err)
	}
	resp.Body.Close()

	deadline := time.Now().Add(syncTimeout)
	for {
		r.mu.Lock()
		for i := mark; i < len(r.reqs); i++ {
			if r.reqs[i].syncToken() == token {
				var out []Request
				for _, q := range r.reqs[mark:i] {
					if q.syncToken() == "" {
						out = append(out, q)
					}
				}
				r.mu.Unlock()
				return out, nil
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the access log did not show request %s within %s", token, syncTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// do sends a request to the registry, with the configured credentials.
func (r *Registry) do(ctx context.Context, method, path string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.URL(path), nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.opts.user != "" {
		req.SetBasicAuth(r.opts.user, r.opts.password)
	}
	return r.client.Do(req)
}

// manifestAccept lists the manifest media types kiln and ko push.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// ManifestDigest asks the registry for repo's manifest ref (a tag or a
// digest) with HEAD and returns the status and the Docker-Content-Digest
// header. A missing manifest is status 404 and no error.
func (r *Registry) ManifestDigest(ctx context.Context, repo, ref string) (int, string, error) {
	resp, err := r.do(ctx, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), nil
}

// Descriptor is the part of an OCI descriptor the tests read.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Manifest is the part of an image manifest the tests read.
type Manifest struct {
	MediaType string       `json:"mediaType"`
	Config    Descriptor   `json:"config"`
	Layers    []Descriptor `json:"layers"`
	// Digest is the manifest's own digest, from Docker-Content-Digest.
	Digest string `json:"-"`
}

// CompressedSize is what a pull downloads: the config and the layers.
func (m *Manifest) CompressedSize() int64 {
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// Manifest fetches repo's image manifest ref.
func (r *Registry) Manifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	resp, err := r.do(ctx, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET manifest %s:%s: %s: %s", repo, ref, resp.Status, bytes.TrimSpace(body))
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest %s:%s: %w", repo, ref, err)
	}
	m.Digest = resp.Header.Get("Docker-Content-Digest")
	return &m, nil
}

// Blob fetches a blob of repo.
func (r *Registry) Blob(ctx context.Context, repo, digest string) ([]byte, error) {
	resp, err := r.do(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET blob %s@%s: %s", repo, digest, resp.Status)
	}
	return body, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// VerifyTag checks, blob by blob, that repo:tag is whole: its manifest,
// config and every layer are there and hash to their digests and sizes.
func (r *Registry) VerifyTag(ctx context.Context, repo, tag string) error {
	m, err := r.Manifest(ctx, repo, tag)
	if err != nil {
		return err
	}
	for _, d := range append([]Descriptor{m.Config}, m.Layers...) {
		b, err := r.Blob(ctx, repo, d.Digest)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", repo, tag, err)
		}
		sum := sha256.Sum256(b)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest || int64(len(b)) != d.Size {
			return fmt.Errorf("%s:%s: blob %s is %d bytes hashing to %s, want %d bytes", repo, tag, d.Digest, len(b), got, d.Size)
		}
	}
	return nil
}
