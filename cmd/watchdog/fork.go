package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// forker runs fprocess once per request: the streaming, serializing and
// classic modes.
type forker struct {
	argv        []string
	mode        mode
	execTimeout time.Duration
	contentType string
	prefixLogs  bool
	maxLine     int
	logger      *log.Logger
	stdout      io.Writer // where write_debug copies the output
	stderr      io.Writer // where unprefixed stderr lines go

	// classic mode's settings
	combineOutput  bool
	cgiHeaders     bool
	marshalRequest bool
	writeDebug     bool
	debugHeaders   bool
}

func newForker(cfg config, logger *log.Logger, stdout, stderr io.Writer) *forker {
	return &forker{
		argv:           splitCommand(cfg.process),
		mode:           cfg.mode,
		execTimeout:    cfg.execTimeout,
		contentType:    cfg.contentType,
		prefixLogs:     cfg.prefixLogs,
		maxLine:        cfg.logBufferSize,
		logger:         logger,
		stdout:         stdout,
		stderr:         stderr,
		combineOutput:  cfg.combineOutput,
		cgiHeaders:     cfg.cgiHeaders,
		marshalRequest: cfg.marshalRequest,
		writeDebug:     cfg.writeDebug,
		debugHeaders:   cfg.debugHeaders,
	}
}

func (f *forker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.mode == modeClassic {
		f.serveClassic(w, r)
		return
	}
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

	if f.mode == modeStreaming {
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
			// As of-watchdog answers: the error alone, under content_type.
			f.logger.Printf("%s %s: %s: %v", r.Method, r.URL.Path, f.argv[0], err)
			w.Header().Set("Content-Type", f.contentType)
			w.Header().Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, err.Error())
		}
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// serveClassic is the classic watchdog's fork per request
// (openfaas-contracts.md §3.8): the whole body on stdin, the whole output
// as the answer, stderr in it unless combine_output=false; 500 with the
// error and the output when the process fails, 408 when exec_timeout (off
// by default) kills it; the Content-Type is content_type, else the
// caller's. Where the classic watchdog kills only the process, kiln kills
// its process group, and a caller that goes away stops it too.
func (f *forker) serveClassic(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	start := time.Now()
	if f.debugHeaders {
		logHeaders(f.logger, "in", r.Header)
	}
	body, err := io.ReadAll(r.Body)
	if err == nil && f.marshalRequest {
		body, err = json.Marshal(classicEnvelope{Header: r.Header, Body: classicBody{Raw: body}})
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, err.Error()+"\n")
		return
	}

	ctx := r.Context()
	if f.execTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.execTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, f.argv[0], f.argv[1:]...)
	if f.cgiHeaders {
		cmd.Env = append(os.Environ(), classicCGIEnv(r)...)
	}
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout = &out
	if f.combineOutput {
		// One writer for both: exec then gives them one pipe, and the
		// lines keep the order the process wrote them in.
		cmd.Stderr = &out
	} else {
		errLines := newLineWriter(f.logger, f.stderr, "stderr", true, f.maxLine)
		defer errLines.Close()
		cmd.Stderr = errLines
	}
	cmd.WaitDelay = time.Second
	killProcessGroup(cmd)

	err = cmd.Run()
	if f.writeDebug {
		_, _ = f.stdout.Write(out.Bytes())
	}
	switch {
	case err != nil && r.Context().Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		f.logger.Printf("%s %s: killed %s after exec_timeout of %s", r.Method, r.URL.Path, f.argv[0], f.execTimeout)
		w.WriteHeader(http.StatusRequestTimeout)
		_, _ = io.WriteString(w, "Killed process.\n")
	case err != nil:
		f.logger.Printf("%s %s: %s: %v", r.Method, r.URL.Path, f.argv[0], err)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, err.Error()+"\n")
		_, _ = w.Write(out.Bytes())
	default:
		h := w.Header()
		if f.contentType != "" {
			h.Set("Content-Type", f.contentType)
		} else if ct := r.Header.Get("Content-Type"); ct != "" {
			h.Set("Content-Type", ct)
		}
		h.Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out.Bytes())
	}
	if f.debugHeaders {
		logHeaders(f.logger, "out", w.Header())
	}
}

// classicEnvelope is marshal_request's stdin: {"header": {...}, "body":
// {"raw": "<base64>"}}.
type classicEnvelope struct {
	Header http.Header `json:"header"`
	Body   classicBody `json:"body"`
}

type classicBody struct {
	Raw []byte `json:"raw"`
}

func logHeaders(logger *log.Logger, direction string, h http.Header) {
	for k, v := range h {
		logger.Printf("[%s] %s=%s", direction, k, v)
	}
}

// classicCGIEnv is cgiEnv as the classic watchdog has it, which adds the
// Content-Length (-1 when chunked), under two names, and the Host.
func classicCGIEnv(r *http.Request) []string {
	env := make([]string, 0, len(r.Header)+8)
	for name, values := range r.Header {
		if len(values) == 0 {
			continue
		}
		env = append(env, "Http_"+strings.ReplaceAll(name, "-", "_")+"="+values[0])
	}
	n := strconv.FormatInt(r.ContentLength, 10)
	env = append(env, "Http_Method="+r.Method, "Http_ContentLength="+n, "Http_Content_Length="+n)
	if len(r.TransferEncoding) > 0 {
		env = append(env, "Http_Transfer_Encoding="+r.TransferEncoding[0])
	}
	if r.URL.RawQuery != "" {
		env = append(env, "Http_Query="+r.URL.RawQuery)
	}
	if r.URL.Path != "" {
		env = append(env, "Http_Path="+r.URL.Path)
	}
	if r.Host != "" {
		env = append(env, "Http_Host="+r.Host)
	}
	return env
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
