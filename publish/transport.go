package publish

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultTimeout is how long kiln waits on a registry that sends nothing:
// the default of --registry-timeout.
const DefaultTimeout = 2 * time.Minute

// DefaultRetries is how many times a registry request or upload that met a
// fault is tried again.
const DefaultRetries = 3

// firstBackoff is the wait before the first retry; each next one is three
// times longer.
const firstBackoff = 200 * time.Millisecond

// SilentError is a registry that sent nothing for the timeout: it was not
// reached, did not answer, or stopped sending in the middle. It is not
// retried: waiting again would only multiply the wait.
type SilentError struct {
	// Host is the registry's HOST[:PORT].
	Host    string
	Timeout time.Duration
	Err     error
}

func (e *SilentError) Error() string {
	return fmt.Sprintf("registry %s sent nothing for %s (--registry-timeout)", e.Host, e.Timeout)
}

func (e *SilentError) Unwrap() error { return e.Err }

// TransportOption configures NewTransport's transport.
type TransportOption func(*transportOptions)

type transportOptions struct {
	tlsFor func(host string) *tls.Config
}

// WithTLSConfig sets the TLS configuration of the connections to each
// registry host (without port): nil, or a nil result, keeps Go's default
// (the system's certificate authorities). The host is given, not read
// from the handshake, since a registry named by its IP address sends no
// server name.
func WithTLSConfig(tlsFor func(host string) *tls.Config) TransportOption {
	return func(o *transportOptions) { o.tlsFor = tlsFor }
}

// NewTransport returns the HTTP transport of every registry request kiln
// makes: pushes, existence checks and pulls. timeout bounds connecting,
// the TLS handshake, the wait for a response's headers, and any stretch in
// which a connection carries no byte either way; nothing bounds a whole
// request, so a large blob takes as long as it needs while it moves.
// Running out of time is a *SilentError.
//
// A request without a body, or whose body can be read again, that fails on
// a network fault (refused, reset or dropped connection) or is answered
// 408, 429 or 5xx, is tried again up to retries times in all, waiting 200
// ms, then three times longer each time. Each retry is logged through
// log/slog with the request's context, saying what failed and when the
// next try comes. Registry also tries whole uploads again, and caps the
// retries of one upload and its requests together, so a push makes a
// bounded number of requests.
func NewTransport(timeout time.Duration, retries int, opts ...TransportOption) http.RoundTripper {
	var o transportOptions
	for _, opt := range opts {
		opt(&o)
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: timeout}, nil
	}
	if o.tlsFor != nil {
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, t.DialContext, network, addr, o.tlsFor)
		}
	}
	t.TLSHandshakeTimeout = timeout
	t.ResponseHeaderTimeout = timeout
	return &retryTransport{next: &silenceTransport{next: t, timeout: timeout}, retries: retries}
}

// idleConn fails a read or a write when the connection carried no byte
// either way for idle: each read and write pushes both deadlines back, so
// a long upload keeps the wait for its response open.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// silenceTransport turns the timeouts of its requests and of their
// response bodies into *SilentError.
type silenceTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *silenceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, t.silent(req, err)
	}
	resp.Body = &silentBody{ReadCloser: resp.Body, t: t, req: req}
	return resp, nil
}

func (t *silenceTransport) silent(req *http.Request, err error) error {
	var ne net.Error
	if req.Context().Err() == nil && (errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
		return &SilentError{Host: req.URL.Host, Timeout: t.timeout, Err: err}
	}
	return err
}

type silentBody struct {
	io.ReadCloser
	t   *silenceTransport
	req *http.Request
}

func (b *silentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.t.silent(b.req, err)
	}
	return n, err
}

// retryTransport tries requests again as NewTransport says.
type retryTransport struct {
	next    http.RoundTripper
	retries int
}

var retryStatus = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	b, _ := ctx.Value(budgetKey{}).(*budget)
	for n := 1; ; n++ {
		resp, err := t.next.RoundTrip(req)
		var why string
		switch {
		case err != nil && retryable(err):
			why = err.Error()
		case err == nil && slices.Contains(retryStatus, resp.StatusCode):
			why = resp.Status
		default:
			return resp, err
		}
		if req.Body != nil && req.GetBody == nil {
			return resp, err // a streamed body: the upload as a whole is tried again
		}
		delay, again := retryAfter(ctx, b, n, t.retries, req.Method+" "+req.URL.Redacted(), why)
		if !again {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
	}
}

// retryable reports a network fault worth another try: a refused, reset or
// dropped connection. Silence and a cancelled context are not.
func retryable(err error) bool {
	var silent *SilentError
	if errors.As(err, &silent) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var temp interface{ Temporary() bool }
	return (errors.As(err, &temp) && temp.Temporary()) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// budget is the retries one operation (a layer's upload, the manifest's)
// may still make, its requests' and its own together: four times the
// retries of one request.
type budget struct {
	mu   sync.Mutex
	left int
}

type budgetKey struct{}

func newBudget(retries int) *budget { return &budget{left: 4 * retries} }

func withBudget(ctx context.Context, b *budget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

func (b *budget) take() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left <= 0 {
		return false
	}
	b.left--
	return true
}

// retryAfter decides on retry n of at most limit of what, which failed
// with why: when one is left, of these and of the operation's budget b
// (nil for none), it logs it and returns how long to wait before it.
func retryAfter(ctx context.Context, b *budget, n, limit int, what, why string) (time.Duration, bool) {
	if n > limit || !b.take() {
		return 0, false
	}
	delay := firstBackoff
	for range n - 1 {
		delay *= 3
	}
	slog.WarnContext(ctx, "registry request failed; trying again", "request", what, "error", why,
		"retry", fmt.Sprintf("%d of %d", n, limit), "in", delay)
	return delay, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialTLS dials addr and makes the TLS handshake with the configuration
// tlsFor gives its host.
func dialTLS(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), network, addr string, tlsFor func(string) *tls.Config) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{}
	if c := tlsFor(host); c != nil {
		cfg = c.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}
