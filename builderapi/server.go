package builderapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Config is com.openfaas.docker.config, as faas-cli writes it.
type Config struct {
	Image     string            `json:"image"`
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	Platforms []string          `json:"platforms,omitempty"`
	SkipPush  bool              `json:"skipPush,omitempty"`
}

// Result is one reply object, as faas-cli reads it.
type Result struct {
	Log    []string `json:"log"`
	Image  string   `json:"image,omitempty"`
	Status string   `json:"status"`
	Error  string   `json:"error,omitempty"`
}

// The statuses of a Result.
const (
	StatusInProgress = "in_progress"
	StatusSuccess    = "success"
	StatusFailed     = "failed"
)

// Request is a verified build request, unpacked.
type Request struct {
	// Dir is the context/ folder: faas-cli's ./build/<fn>.
	Dir    string
	Config Config
	// Lang is template.yml's language; "" when the context has none.
	Lang string
	// Secrets are the unsealed build secrets.
	Secrets map[string][]byte
}

// Builder builds a request and returns the image as NAME@DIGEST; it
// writes its progress, a line at a time, to log.
type Builder interface {
	Build(ctx context.Context, req *Request, log io.Writer) (string, error)
}

// Server is the builder API's HTTP handler.
type Server struct {
	secret  []byte
	builder Builder
	keys    *KeyPair
	opts    options
	slots   chan struct{}
}

// Option configures a Server.
type Option func(*options) error

type options struct {
	maxBody     int64
	concurrency int
	timeout     time.Duration
	keys        *KeyPair
}

// WithMaxBodySize bounds a request's body; a larger one gets 413.
// Default 512 MiB.
func WithMaxBodySize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max body size %d: want more than 0", n)
		}
		o.maxBody = n
		return nil
	}
}

// WithConcurrency sets how many builds run at once; the other requests
// wait. Default 1.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("concurrency %d: want 1 or more", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithBuildTimeout bounds each build. Default 30 minutes.
func WithBuildTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("build timeout %s: want more than 0", d)
		}
		o.timeout = d
		return nil
	}
}

// WithKeyPair sets the key pair build secrets are sealed to. Default: one
// made by New, so a restart changes it (faas-cli fetches it each time).
func WithKeyPair(k *KeyPair) Option {
	return func(o *options) error { o.keys = k; return nil }
}

// New returns a server that checks signatures with secret (trimmed of
// white space, as faas-cli trims it) and builds with b.
func New(secret []byte, b Builder, opts ...Option) (*Server, error) {
	o := options{maxBody: 512 << 20, concurrency: 1, timeout: 30 * time.Minute}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	secret = []byte(strings.TrimSpace(string(secret)))
	if len(secret) == 0 {
		return nil, errors.New("the payload secret is empty")
	}
	if o.keys == nil {
		k, err := GenerateKeyPair()
		if err != nil {
			return nil, err
		}
		o.keys = k
	}
	return &Server{secret: secret, builder: b, keys: o.keys, opts: o, slots: make(chan struct{}, o.concurrency)}, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/publickey" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.keys.Info())
	case r.URL.Path == "/build" && r.Method == http.MethodPost:
		s.build(w, r)
	case r.URL.Path == "/healthz":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/build" || r.URL.Path == "/publickey":
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	body, err := s.readSigned(w, r)
	if err != nil {
		status := http.StatusUnauthorized
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		} else if !errors.Is(err, errSignature) {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, Result{Log: []string{}, Status: StatusFailed, Error: err.Error()})
		return
	}
	defer os.Remove(body.Name())
	defer body.Close()

	ctx, cancel := context.WithTimeout(r.Context(), s.opts.timeout)
	defer cancel()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		writeJSON(w, http.StatusServiceUnavailable, Result{Log: []string{}, Status: StatusFailed, Error: "no build slot: " + ctx.Err().Error()})
		return
	}

	out := newReply(w, strings.Contains(r.Header.Get("Accept"), "application/x-ndjson"))
	image, err := s.unpackAndBuild(ctx, body, out)
	out.finish(image, err)
}

// unpackAndBuild unpacks the verified body and builds it.
func (s *Server) unpackAndBuild(ctx context.Context, body *os.File, log io.Writer) (string, error) {
	work, err := os.MkdirTemp("", "kiln-builder-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	req, err := unpack(body, work, s.keys)
	if err != nil {
		return "", err
	}
	return s.builder.Build(ctx, req, log)
}

// errSignature is a missing or wrong X-Build-Signature.
var errSignature = errors.New("X-Build-Signature: missing or wrong")

// readSigned spools the body to a temporary file while it hashes it, and
// returns the file, rewound, only when the signature matches.
func (s *Server) readSigned(w http.ResponseWriter, r *http.Request) (*os.File, error) {
	want, ok := strings.CutPrefix(r.Header.Get("X-Build-Signature"), "sha256=")
	wantSum, err := hex.DecodeString(want)
	if !ok || err != nil || len(wantSum) != sha256.Size {
		return nil, errSignature
	}
	f, err := os.CreateTemp("", "kiln-builder-body-")
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, s.secret)
	_, err = io.Copy(io.MultiWriter(f, mac), http.MaxBytesReader(w, r.Body, s.opts.maxBody))
	if err == nil && !hmac.Equal(mac.Sum(nil), wantSum) {
		err = errSignature
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// reply writes a build's progress and result: NDJSON lines as they come,
// or one object at the end.
type reply struct {
	w      http.ResponseWriter
	stream bool
	mu     sync.Mutex
	log    []string
	// partial is the unfinished last line written.
	partial []byte
}

func newReply(w http.ResponseWriter, stream bool) *reply {
	if stream {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}
	return &reply{w: w, stream: stream}
}

// Write takes progress text and sends each whole line.
func (rp *reply) Write(p []byte) (int, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.partial = append(rp.partial, p...)
	for {
		i := strings.IndexByte(string(rp.partial), '\n')
		if i < 0 {
			return len(p), nil
		}
		rp.line(string(rp.partial[:i]))
		rp.partial = rp.partial[i+1:]
	}
}

func (rp *reply) line(l string) {
	if !rp.stream {
		rp.log = append(rp.log, l)
		return
	}
	rp.send(Result{Log: []string{l}, Status: StatusInProgress})
}

func (rp *reply) send(res Result) {
	json.NewEncoder(rp.w).Encode(res)
	if f, ok := rp.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish sends the result.
func (rp *reply) finish(image string, err error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.partial) > 0 {
		rp.line(string(rp.partial))
		rp.partial = nil
	}
	res := Result{Log: []string{}, Image: image, Status: StatusSuccess}
	if !rp.stream {
		res.Log = append(res.Log, rp.log...)
	}
	status := http.StatusOK
	if err != nil {
		res.Image, res.Status, res.Error = "", StatusFailed, err.Error()
		status = http.StatusInternalServerError
	}
	if rp.stream {
		rp.send(res)
		return
	}
	writeJSON(rp.w, status, res)
}
