package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// forker runs fprocess once per request: the streaming and serializing
// modes.
type forker struct {
	argv        []string
	streaming   bool
	execTimeout time.Duration
	contentType string
	prefixLogs  bool
	maxLine     int
	logger      *log.Logger
	stderr      io.Writer // where unprefixed stderr lines go
}

func newForker(cfg config, logger *log.Logger, stderr io.Writer) *forker {
	return &forker{
		argv:        splitCommand(cfg.process),
		streaming:   cfg.mode == modeStreaming,
		execTimeout: cfg.execTimeout,
		contentType: cfg.contentType,
		prefixLogs:  cfg.prefixLogs,
		maxLine:     cfg.logBufferSize,
		logger:      logger,
		stderr:      stderr,
	}
}

func (f *forker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	timeout := requestTimeout(f.execTimeout, r.Header.Get("X-Timeout"))
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	timedOut := func() bool {
		return r.Context().Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
	}

	cmd := exec.CommandContext(ctx, f.argv[0], f.argv[1:]...)
	cmd.Env = append(os.Environ(), cgiEnv(r)...)
	// One writer per process, so that two requests' lines never mix.
	errLines := newLineWriter(f.logger, f.stderr, "stderr", f.prefixLogs, f.maxLine)
	defer errLines.Close()
	cmd.Stderr = errLines
	cmd.WaitDelay = time.Second
	killProcessGroup(cmd)

	if f.streaming {
		f.serveStreaming(w, r, cmd, timeout, timedOut)
		return
	}
	f.serveSerializing(w, r, cmd, start, timeout, timedOut)
}

// serveStreaming pipes the body to stdin and stdout to the response as it
// comes. The status is 200 once the process has started: a failure later can
// only cut the body short.
func (f *forker) serveStreaming(w http.ResponseWriter, r *http.Request, cmd *exec.Cmd, timeout time.Duration, timedOut func() bool) {
	w.Header().Set("Content-Type", f.contentType)
	rc := http.NewResponseController(w)
	// The process reads the body while its output is already going out;
	// without this an HTTP/1 server stops the body at the first flush.
	_ = rc.EnableFullDuplex()
	out := &flushWriter{w: w, rc: rc}
	cmd.Stdin = r.Body
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		f.logger.Printf("starting %s: %v", f.argv[0], err)
		internalError(w, http.StatusInternalServerError, time.Now(), fmt.Sprintf("starting %s: %v", f.argv[0], err))
		return
	}
	out.start()
	if err := cmd.Wait(); err != nil {
		if timedOut() {
			f.logger.Printf("%s %s: killed %s after exec_timeout of %s", r.Method, r.URL.Path, f.argv[0], timeout)
		} else {
			f.logger.Printf("%s %s: %s: %v", r.Method, r.URL.Path, f.argv[0], err)
		}
	}
}

// serveSerializing buffers the body and the output, so the status can say
// whether the process succeeded.
func (f *forker) serveSerializing(w http.ResponseWriter, r *http.Request, cmd *exec.Cmd, start time.Time, timeout time.Duration, timedOut func() bool) {
	var in io.Reader = r.Body
	if r.ContentLength > 0 {
		in = io.LimitReader(r.Body, r.ContentLength)
	}
	body, err := io.ReadAll(in)
	if err != nil {
		internalError(w, http.StatusInternalServerError, start, fmt.Sprintf("reading request body: %v", err))
		return
	}
	var out bytes.Buffer
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		switch {
		case timedOut():
			f.logger.Printf("%s %s: killed %s after exec_timeout of %s", r.Method, r.URL.Path, f.argv[0], timeout)
			internalError(w, http.StatusGatewayTimeout, start, fmt.Sprintf("function did not finish within exec_timeout of %s", timeout))
		default:
			f.logger.Printf("%s %s: %s: %v", r.Method, r.URL.Path, f.argv[0], err)
			w.Header().Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
			http.Error(w, fmt.Sprintf("running %s: %v", f.argv[0], err), http.StatusInternalServerError)
		}
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// cgiEnv is the request as CGI-style variables, as of-watchdog passes it to
// forked processes: Http_<Header_Name> (first value), Http_Method, Http_Path,
// Http_Query and Http_Transfer_Encoding when present.
func cgiEnv(r *http.Request) []string {
	env := make([]string, 0, len(r.Header)+4)
	for name, values := range r.Header {
		if len(values) == 0 {
			continue
		}
		env = append(env, "Http_"+strings.ReplaceAll(name, "-", "_")+"="+values[0])
	}
	env = append(env, "Http_Method="+r.Method, "Http_Path="+r.URL.Path)
	if r.URL.RawQuery != "" {
		env = append(env, "Http_Query="+r.URL.RawQuery)
	}
	if len(r.TransferEncoding) > 0 {
		env = append(env, "Http_Transfer_Encoding="+r.TransferEncoding[0])
	}
	return env
}

// flushWriter sends each chunk of the process's output as soon as it is
// written, and holds it back until the process has started so the header
// can still say 500 if it does not.
type flushWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	pending []byte
}

func (fw *flushWriter) start() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.started = true
	fw.w.WriteHeader(http.StatusOK)
	if len(fw.pending) > 0 {
		_, _ = fw.w.Write(fw.pending)
		fw.pending = nil
	}
	_ = fw.rc.Flush()
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if !fw.started {
		fw.pending = append(fw.pending, p...)
		return len(p), nil
	}
	n, err := fw.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := fw.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}
