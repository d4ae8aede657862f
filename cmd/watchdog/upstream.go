package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// upstreamClient is a small HTTP/1.1 client for the function's server, with
// a pool of keep-alive connections.
//
// It exists instead of http.Transport for size: the Transport links an
// HTTP/2 client and a TLS client, about half a megabyte, which the watchdog
// does not need to reach a plain-HTTP server on the same host. It never
// follows redirects and never adds or decodes compression.
type upstreamClient struct {
	addr      string // host:port
	dialer    net.Dialer
	maxIdle   int
	tlsConfig *tls.Config // for an https server: the JWT check's authority

	mu   sync.Mutex
	idle []*upstreamConn // most recently used last
}

func newUpstreamClient(addr string) *upstreamClient {
	return &upstreamClient{
		addr:    addr,
		dialer:  net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: 256,
	}
}

// upstreamConn is one connection. While idle in the pool a watcher
// goroutine reads from it, so that a connection the server closed is
// dropped from the pool when it happens, not found broken by the next
// request.
type upstreamConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer

	watchDone chan struct{}
	watchErr  error // the watcher's Peek result, read after watchDone
}

// writeGrace bounds how long a finished response waits for its request to
// be fully written before the connection can go back to the pool.
const writeGrace = 100 * time.Millisecond

// longAgo is a deadline in the past, which makes blocked I/O return at once.
var longAgo = time.Unix(1, 0)

func (c *upstreamClient) dial(ctx context.Context) (*upstreamConn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	if c.tlsConfig != nil {
		// crypto/tls is in the binary anyway, with net/http's server;
		// http.Transport's HTTP/2 client is what the watchdog avoids.
		tc := tls.Client(conn, c.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &upstreamConn{Conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}, nil
}

// getIdle takes a live connection from the pool, or returns nil.
func (c *upstreamClient) getIdle() *upstreamConn {
	for {
		c.mu.Lock()
		n := len(c.idle)
		if n == 0 {
			c.mu.Unlock()
			return nil
		}
		pc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()

		// Stop the watcher: its Peek returns a timeout error, unless the
		// server closed the connection or sent bytes nobody asked for.
		_ = pc.SetReadDeadline(longAgo)
		<-pc.watchDone
		if te, ok := pc.watchErr.(interface{ Timeout() bool }); ok && te.Timeout() {
			_ = pc.SetReadDeadline(time.Time{})
			return pc
		}
		_ = pc.Close()
	}
}

func (c *upstreamClient) putIdle(pc *upstreamConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) >= c.maxIdle {
		_ = pc.Close()
		return
	}
	pc.watchDone = make(chan struct{})
	pc.watchErr = nil
	c.idle = append(c.idle, pc)
	go c.watch(pc)
}

func (c *upstreamClient) watch(pc *upstreamConn) {
	_, err := pc.br.Peek(1)
	pc.watchErr = err
	c.mu.Lock()
	for i, p := range c.idle {
		if p == pc {
			// Still idle, so the server closed it or spoke out of turn.
			c.idle = append(c.idle[:i], c.idle[i+1:]...)
			_ = pc.Close()
			break
		}
	}
	c.mu.Unlock()
	close(pc.watchDone)
}

// closeIdle closes the pooled connections.
func (c *upstreamClient) closeIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, pc := range idle {
		_ = pc.Close()
	}
}

// roundTrip sends req and reads the response head. The caller must close
// the response body, which returns the connection to the pool once read to
// the end. replayable says the body can be sent again: only then is a
// request that failed on a reused connection retried on a new one. A 101
// response also returns the connection, which the caller then owns.
func (c *upstreamClient) roundTrip(ctx context.Context, req *http.Request, replayable func() io.ReadCloser) (*http.Response, *upstreamConn, error) {
	for attempt := 0; ; attempt++ {
		pc := c.getIdle()
		reused := pc != nil
		if pc == nil {
			var err error
			if pc, err = c.dial(ctx); err != nil {
				return nil, nil, fmt.Errorf("connecting to %s: %w", c.addr, err)
			}
		}
		resp, err := c.send(ctx, pc, req)
		if err == nil {
			return resp, pc, nil
		}
		if !reused || replayable == nil || attempt > 0 || ctx.Err() != nil {
			return nil, nil, err
		}
		req.Body = replayable()
	}
}

// send writes req on pc and reads the response head, while the body is
// still being written if the server answers early.
func (c *upstreamClient) send(ctx context.Context, pc *upstreamConn, req *http.Request) (*http.Response, error) {
	// A cancelled context, exec_timeout included, interrupts any read or
	// write on the connection.
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(longAgo) })

	writeDone := make(chan error, 1)
	go func() {
		err := req.Write(pc.bw)
		if err == nil {
			err = pc.bw.Flush()
		}
		writeDone <- err
	}()

	resp, err := readResponse(pc.br, req)
	if err != nil {
		_ = pc.Close() // the writer, if still going, fails on it
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("reading response from %s: %w", c.addr, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		stop()
		return resp, nil
	}
	resp.Body = &upstreamBody{
		body:      resp.Body,
		conn:      pc,
		client:    c,
		stop:      stop,
		writeDone: writeDone,
		reusable:  !resp.Close && !req.Close,
	}
	return resp, nil
}

// readResponse reads the final response head, skipping interim 1xx
// responses such as 100 Continue.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		_ = resp.Body.Close()
	}
}

// upstreamBody returns its connection to the pool when the body has been
// read to the end and the request fully written, and closes it otherwise.
type upstreamBody struct {
	body      io.ReadCloser
	conn      *upstreamConn
	client    *upstreamClient
	stop      func() bool
	writeDone chan error
	reusable  bool

	mu       sync.Mutex
	eof      bool
	released bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.eof = true
		b.mu.Unlock()
		b.release()
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	b.release()
	return nil
}

func (b *upstreamBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	b.released = true
	// stop reports false once the context has fired and poisoned the
	// connection's deadline.
	reuse := b.stop() && b.eof && b.reusable
	if reuse {
		// The writer usually finishes just after the server answers; one
		// still going after writeGrace is sending a body the server did
		// not wait for, and the connection is not worth keeping.
		t := time.NewTimer(writeGrace)
		select {
		case err := <-b.writeDone:
			reuse = err == nil
		case <-t.C:
			reuse = false
		}
		t.Stop()
	}
	if reuse {
		b.client.putIdle(b.conn)
		return
	}
	_ = b.conn.Close() // a writer still going fails on it
}
