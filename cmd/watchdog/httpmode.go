package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childProcess is the function's long-running server in http mode.
type childProcess struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed once the process has exited
	err     error         // Wait's result, set before done is closed
}

// startChild starts fprocess with the watchdog's environment and sends its
// output, line by line, to the watchdog's logs.
func startChild(cfg config, logger *log.Logger, stdout, stderr io.Writer) (*childProcess, error) {
	argv := splitCommand(cfg.process)
	cmd := exec.Command(argv[0], argv[1:]...)
	outLines := newLineWriter(logger, stdout, "stdout", cfg.prefixLogs, cfg.logBufferSize)
	errLines := newLineWriter(logger, stderr, "stderr", cfg.prefixLogs, cfg.logBufferSize)
	cmd.Stdout = outLines
	cmd.Stderr = errLines
	// A grandchild that keeps the output pipes open must not keep Wait,
	// and so the watchdog's exit, waiting.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting function process %q: %w", cfg.process, err)
	}
	c := &childProcess{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = outLines.Close()
		_ = errLines.Close()
		close(c.done)
	}()
	return c, nil
}

// exitError describes how the child ended, for the watchdog's last log line.
func (c *childProcess) exitError() error {
	if c.err != nil {
		return fmt.Errorf("function process exited: %w", c.err)
	}
	return errors.New("function process exited with status 0")
}

// stop sends SIGTERM, so that the function can finish its own work, and
// kills it if it has not exited within grace.
func (c *childProcess) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done // bounded: Wait returns after the kill, WaitDelay bounds the pipes
	}
}

// proxy forwards each request to the function's server.
// maxEarlyDrain is how much of a body the function never read is taken
// before the watchdog answers for it.
const maxEarlyDrain = 8 << 20

type proxy struct {
	upstream    string // upstream_url without a trailing slash
	execTimeout time.Duration
	buffer      bool
	client      *upstreamClient
	logger      *log.Logger
}

func newProxy(cfg config, logger *log.Logger) (*proxy, error) {
	u, err := url.Parse(cfg.upstreamURL)
	if err != nil {
		return nil, fmt.Errorf("parsing upstream_url: %w", err)
	}
	return &proxy{
		upstream:    cfg.upstreamURL,
		execTimeout: cfg.execTimeout,
		buffer:      cfg.bufferHTTP,
		client:      newUpstreamClient(hostPort(u)),
		logger:      logger,
	}, nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	stream := upgrade || wantsStream(r)

	ctx := r.Context()
	var timeout time.Duration
	if !stream {
		// Streams are long-lived by design: only write_timeout bounds them.
		timeout = requestTimeout(p.execTimeout, r.Header.Get("X-Timeout"))
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	out, err := http.NewRequestWithContext(ctx, r.Method, p.upstream+requestURI(r), nil)
	if err != nil {
		internalError(w, http.StatusInternalServerError, start, fmt.Sprintf("building upstream request: %v", err))
		return
	}
	out.Header = endToEndHeaders(r.Header)
	out.Header.Del("Expect") // the watchdog's own server has answered it
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // or Request.Write adds Go's
	}
	if upgrade {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", r.Header.Get("Upgrade"))
	}
	out.Host = r.Host
	out.Body, out.ContentLength = r.Body, r.ContentLength
	// The function may answer before it has read the whole body, as an
	// echo does; the rest of the body must still reach it.
	_ = http.NewResponseController(w).EnableFullDuplex()

	var replay func() io.ReadCloser
	if p.buffer {
		// For servers such as WSGI that cannot read a chunked body.
		data, err := io.ReadAll(r.Body)
		if err != nil {
			internalError(w, http.StatusInternalServerError, start, fmt.Sprintf("reading request body: %v", err))
			return
		}
		replay = func() io.ReadCloser { return io.NopCloser(bytes.NewReader(data)) }
		out.Body, out.ContentLength = replay(), int64(len(data))
	}
	if out.ContentLength == 0 {
		replay = func() io.ReadCloser { return http.NoBody }
		out.Body = http.NoBody
	}

	resp, conn, err := p.client.roundTrip(ctx, out, replay)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			p.logger.Printf("%s %s: caller went away: %v", r.Method, requestURI(r), r.Context().Err())
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			internalError(w, http.StatusGatewayTimeout, start, fmt.Sprintf("function did not answer within exec_timeout of %s", timeout))
		default:
			p.logger.Printf("calling function: %s %s: %v", r.Method, requestURI(r), err)
			// A caller still sending its body reads the answer only once
			// the body is taken: up to a bound, past which the connection
			// closes as net/http closes it.
			io.Copy(io.Discard, io.LimitReader(r.Body, maxEarlyDrain))
			internalError(w, http.StatusInternalServerError, start, fmt.Sprintf("calling function: %v", err))
		}
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if !upgrade {
			_ = conn.Close()
			internalError(w, http.StatusInternalServerError, start, "function switched protocols unasked")
			return
		}
		p.switchProtocols(w, r, resp, conn)
		return
	}
	defer resp.Body.Close()

	h := w.Header()
	for k, v := range endToEndHeaders(resp.Header) {
		h[k] = v
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	h.Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
	w.WriteHeader(resp.StatusCode)
	// A response of unknown length may be a stream too: send the head at
	// once and each piece as it comes, not when a buffer fills.
	flush := stream || resp.ContentLength < 0
	if flush {
		_ = http.NewResponseController(w).Flush()
	}
	if err := copyBody(w, resp.Body, flush); err != nil {
		// The status is sent; all that is left is to say why the body is short.
		p.logger.Printf("copying response of %s %s: %v", r.Method, requestURI(r), err)
		return
	}
	for k, v := range resp.Trailer {
		h[k] = v
	}
}

// switchProtocols hands the caller's connection over to the function's
// after a 101 answer, as for a WebSocket, and copies both ways until either
// side closes.
func (p *proxy) switchProtocols(w http.ResponseWriter, r *http.Request, resp *http.Response, upstream *upstreamConn) {
	defer upstream.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		internalError(w, http.StatusInternalServerError, time.Now(), fmt.Sprintf("taking over the connection: %v", err))
		return
	}
	defer conn.Close()
	// The server's timeouts were meant for one request, not a session.
	_ = conn.SetDeadline(time.Time{})
	// Connection and Upgrade are the point of a 101, so all headers go.
	_, _ = brw.WriteString("HTTP/1.1 " + resp.Status + "\r\n")
	_ = resp.Header.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		p.logger.Printf("%s %s: switching protocols: %v", r.Method, requestURI(r), err)
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream.Conn, brw.Reader); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream.br); done <- struct{}{} }()
	<-done
	// Closing both ends the other copy.
	_ = conn.Close()
	_ = upstream.Close()
	<-done
}

// copyBody copies the function's response body, flushing after each read
// when flush is set.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	if !flush {
		_, err := io.Copy(w, body)
		return err
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32*1024)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// wantsStream picks the requests whose answer must not be buffered nor cut
// by exec_timeout: server-sent events and NDJSON streams.
func wantsStream(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/event-stream") ||
		strings.Contains(accept, "application/x-ndjson")
}

// requestURI is the path and query to append to upstream_url. An
// absolute-form request line ("GET http://host/path") keeps only its path.
func requestURI(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// requestTimeout lets the caller shorten exec_timeout with X-Timeout, never
// lengthen it, and not at all when exec_timeout is off.
func requestTimeout(execTimeout time.Duration, header string) time.Duration {
	if execTimeout <= 0 || header == "" {
		return execTimeout
	}
	d, err := parseDuration(header)
	if err != nil || d <= 0 || d >= execTimeout {
		return execTimeout
	}
	return d
}

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110, section 7.6.1).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// endToEndHeaders copies h without its hop-by-hop headers.
func endToEndHeaders(h http.Header) http.Header {
	out := h.Clone()
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	return out
}

func durationSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
}

// internalError answers for the watchdog itself, marked so that a caller can
// tell it from an error the function returned.
func internalError(w http.ResponseWriter, code int, start time.Time, msg string) {
	w.Header().Set("X-OpenFaaS-Internal", "of-watchdog")
	w.Header().Set("X-Duration-Seconds", durationSeconds(time.Since(start)))
	http.Error(w, msg, code)
}
