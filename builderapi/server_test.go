package builderapi

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
)

const secret = "payload-secret"

// makeTar writes a request body as faas-cli's builder.MakeTar does: the
// context folder's entries under context/ (the folder itself first), then
// the config, then the sealed secrets if any.
func makeTar(t *testing.T, dir string, cfg Config, sealed []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, info.Name())
		if err != nil {
			return err
		}
		h.Name = strings.TrimPrefix(filepath.Join("context", strings.TrimPrefix(p, dir)), "/")
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o664, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	raw, _ := json.Marshal(cfg)
	add("com.openfaas.docker.config", raw)
	if sealed != nil {
		add("com.openfaas.secrets", sealed)
	}
	tw.Close()
	return buf.Bytes()
}

func sign(body []byte, key string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends body as faas-cli does.
func post(t *testing.T, url string, body []byte, signature string, stream bool) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/build", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("User-Agent", "openfaas-go-sdk")
	if signature != "" {
		req.Header.Set("X-Build-Signature", signature)
	}
	if stream {
		req.Header.Set("Accept", "application/x-ndjson")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// fakeBuilder records the requests it is given and logs two lines.
type fakeBuilder struct {
	mu    sync.Mutex
	calls []Request
	files []string
	err   error
}

func (f *fakeBuilder) Build(_ context.Context, req *Request, log io.Writer) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, *req)
	entries, _ := os.ReadDir(req.Dir)
	for _, e := range entries {
		f.files = append(f.files, e.Name())
	}
	fmt.Fprint(log, "step one\nstep ")
	fmt.Fprint(log, "two\n")
	if f.err != nil {
		return "", f.err
	}
	return req.Config.Image + "@sha256:" + strings.Repeat("ab", 32), nil
}

func newServer(t *testing.T, b Builder, opts ...Option) (*Server, string) {
	t.Helper()
	s, err := New([]byte(secret+"\n"), b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func goContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "template.yml"), []byte("language: golang-middleware\nfprocess: ./handler\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "function"), 0o755)
	os.WriteFile(filepath.Join(dir, "function", "handler.go"), []byte("package function\n"), 0o644)
	return dir
}

// TestSignatureRefused: a missing, malformed or wrong signature, or a
// body changed after signing, gets 401 and nothing is built.
func TestSignatureRefused(t *testing.T) {
	b := &fakeBuilder{}
	_, url := newServer(t, b)
	body := makeTar(t, goContext(t), Config{Image: "reg.example.com/fn:1"}, nil)
	tampered := append(bytes.Clone(body), 0)
	tests := []struct {
		name, signature string
		body            []byte
	}{
		{"missing", "", body},
		{"not sha256=", "sha1=" + strings.Repeat("0", 40), body},
		{"not hex", "sha256=zz", body},
		{"wrong key", sign(body, "other-secret"), body},
		{"tampered body", sign(body, secret), tampered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url, tc.body, tc.signature, true)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", resp.StatusCode)
			}
		})
	}
	if len(b.calls) != 0 {
		t.Errorf("builder called %d times, want 0", len(b.calls))
	}
}

func TestBuildNDJSON(t *testing.T) {
	b := &fakeBuilder{}
	_, url := newServer(t, b)
	body := makeTar(t, goContext(t), Config{Image: "reg.example.com/fn:1", BuildArgs: map[string]string{"A": "1"}}, nil)
	resp := post(t, url, body, sign(body, secret), true)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q; want 200, application/x-ndjson", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []Result
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	want := []Result{
		{Log: []string{"step one"}, Status: StatusInProgress},
		{Log: []string{"step two"}, Status: StatusInProgress},
		{Log: []string{}, Status: StatusSuccess, Image: "reg.example.com/fn:1@sha256:" + strings.Repeat("ab", 32)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NDJSON lines (-want +got):\n%s", diff)
	}
	if len(b.calls) != 1 || b.calls[0].Lang != "golang-middleware" || b.calls[0].Config.BuildArgs["A"] != "1" {
		t.Errorf("builder calls = %+v, want one golang-middleware build with A=1", b.calls)
	}
	if diff := cmp.Diff([]string{"function", "template.yml"}, b.files); diff != "" {
		t.Errorf("context files (-want +got):\n%s", diff)
	}
}

func TestBuildOneObject(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		want       Result
	}{
		{"success", nil, http.StatusOK, Result{Log: []string{"step one", "step two"}, Status: StatusSuccess, Image: "reg.example.com/fn:1@sha256:" + strings.Repeat("ab", 32)}},
		{"failure", fmt.Errorf("building fn: boom"), http.StatusInternalServerError, Result{Log: []string{"step one", "step two"}, Status: StatusFailed, Error: "building fn: boom"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newServer(t, &fakeBuilder{err: tc.err})
			body := makeTar(t, goContext(t), Config{Image: "reg.example.com/fn:1"}, nil)
			resp := post(t, url, body, sign(body, secret), false)
			var got Result
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSecrets seals secrets to the key GET /publickey gives, as faas-cli
// does, and wants the builder to get them opened.
func TestSecrets(t *testing.T) {
	b := &fakeBuilder{}
	_, url := newServer(t, b)
	resp, err := http.Get(url + "/publickey")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info KeyInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if info.Algorithm != "nacl/box" || info.KeyID == "" || !strings.HasPrefix(info.PublicKey, info.KeyID) {
		t.Fatalf("GET /publickey = %+v", info)
	}
	sealed, err := Seal(info.PublicKey, map[string][]byte{"pip_token": []byte("s3cr3t")})
	if err != nil {
		t.Fatal(err)
	}
	body := makeTar(t, goContext(t), Config{Image: "reg.example.com/fn:1"}, sealed)
	if r := post(t, url, body, sign(body, secret), true); r.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", r.StatusCode)
	}
	io.Copy(io.Discard, resp.Body)
	if len(b.calls) != 1 || string(b.calls[0].Secrets["pip_token"]) != "s3cr3t" {
		t.Errorf("builder calls = %+v, want one with pip_token", b.calls)
	}
}

func TestRefusals(t *testing.T) {
	b := &fakeBuilder{}
	_, url := newServer(t, b, WithMaxBodySize(1024))
	big := makeTar(t, goContext(t), Config{Image: "reg.example.com/fn:1"}, bytes.Repeat([]byte("x"), 4096))
	if r := post(t, url, big, sign(big, secret), true); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: status %d, want 413", r.StatusCode)
	}
	if len(b.calls) != 0 {
		t.Errorf("builder called %d times, want 0", len(b.calls))
	}
	if _, err := New([]byte(" \n"), b); err == nil {
		t.Errorf("New() with an empty secret = nil error")
	}
}

// blockingBuilder counts the builds running at once.
type blockingBuilder struct {
	mu            sync.Mutex
	running, peak int
	release       chan struct{}
	started       chan struct{}
}

func (b *blockingBuilder) Build(ctx context.Context, req *Request, _ io.Writer) (string, error) {
	b.mu.Lock()
	b.running++
	b.peak = max(b.peak, b.running)
	b.mu.Unlock()
	b.started <- struct{}{}
	<-b.release
	b.mu.Lock()
	b.running--
	b.mu.Unlock()
	return req.Config.Image + "@sha256:" + strings.Repeat("cd", 32), nil
}

// TestConcurrency sends three builds at once to a server that runs two
// at a time, and a build that outlasts its timeout.
func TestConcurrency(t *testing.T) {
	b := &blockingBuilder{release: make(chan struct{}), started: make(chan struct{}, 3)}
	_, url := newServer(t, b, WithConcurrency(2))
	body := makeTar(t, goContext(t), Config{Image: "reg.example.com/fn:1"}, nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp := post(t, url, body, sign(body, secret), false)
			io.Copy(io.Discard, resp.Body)
		})
	}
	<-b.started
	<-b.started
	select {
	case <-b.started:
		t.Errorf("a third build started while two ran")
	case <-time.After(200 * time.Millisecond):
	}
	close(b.release)
	wg.Wait()
	if b.peak != 2 {
		t.Errorf("peak concurrent builds = %d, want 2", b.peak)
	}

	_, url = newServer(t, builderFunc(func(ctx context.Context, _ *Request, _ io.Writer) (string, error) {
		<-ctx.Done()
		return "", fmt.Errorf("building: %w", ctx.Err())
	}), WithBuildTimeout(100*time.Millisecond))
	resp := post(t, url, body, sign(body, secret), false)
	var res Result
	json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(res.Error, "deadline exceeded") {
		t.Errorf("a build past its timeout: status %d, %+v; want 500 and the deadline", resp.StatusCode, res)
	}
}

type builderFunc func(ctx context.Context, req *Request, log io.Writer) (string, error)

func (f builderFunc) Build(ctx context.Context, req *Request, log io.Writer) (string, error) {
	return f(ctx, req, log)
}
