package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// childStopGrace is how long the function process has to exit after the
// drain has finished and it has been sent SIGTERM. No request is in flight
// by then, so it only bounds the function's own clean-up.
const childStopGrace = 5 * time.Second

// watchdog serves one function until a signal or a fatal error.
type watchdog struct {
	cfg     config
	logger  *log.Logger
	stdout  io.Writer // unprefixed function output
	stderr  io.Writer
	health  *health
	metrics *metrics
	limit   *limiter
}

func newWatchdog(cfg config, logger *log.Logger, stdout, stderr io.Writer) *watchdog {
	limit := &limiter{max: int64(cfg.maxInflight)}
	m := newMetrics()
	m.function, m.limit = cfg.functionName, limit
	return &watchdog{
		cfg:     cfg,
		logger:  logger,
		stdout:  stdout,
		stderr:  stderr,
		health:  &health{lockPath: lockFilePath(), suppressLock: cfg.suppressLock},
		metrics: m,
		limit:   limit,
	}
}

// run serves until signals delivers a signal, then drains and returns nil.
// It returns an error when the watchdog cannot start or cannot go on, which
// in http mode includes the function process exiting.
func (wd *watchdog) run(signals <-chan os.Signal) (err error) {
	cfg := wd.cfg
	if err := wd.health.markNotReady(); err != nil {
		return err
	}
	// On any failure, take the replica out of service before exiting.
	defer func() {
		if err != nil {
			_ = wd.health.shutdown()
		}
	}()

	// Listen before starting the function, so that a taken port is
	// reported at once and not as a function that never becomes ready.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.bindAddress, strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", cfg.port, err)
	}
	defer ln.Close()
	mln, err := net.Listen("tcp", net.JoinHostPort(cfg.bindAddress, strconv.Itoa(cfg.metricsPort)))
	if err != nil {
		return fmt.Errorf("listening on metrics port %d: %w", cfg.metricsPort, err)
	}
	defer mln.Close()

	var (
		fn    http.Handler
		child *childProcess
	)
	switch cfg.mode {
	case modeHTTP:
		px, err := newProxy(cfg, wd.logger)
		if err != nil {
			return err
		}
		defer px.client.closeIdle()
		fn = px
		if child, err = startChild(cfg, wd.logger, wd.stdout, wd.stderr); err != nil {
			return err
		}
		// Whatever happens next, the function does not outlive us.
		defer child.stop(childStopGrace)
	case modeStreaming, modeSerializing, modeClassic:
		fn = newForker(cfg, wd.logger, wd.stdout, wd.stderr)
	case modeStatic:
		info, err := os.Stat(cfg.staticPath)
		if err != nil {
			return fmt.Errorf("opening static_path: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("opening static_path: %s is not a directory", cfg.staticPath)
		}
		fn = http.FileServer(http.Dir(cfg.staticPath))
	}

	guarded := fn
	if cfg.jwt.enabled {
		// Asked for, the check is in place before the first request, or
		// the watchdog does not start.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		auth, err := newJWTAuth(ctx, cfg.jwt, wd.logger, fn)
		cancel()
		if err != nil {
			return err
		}
		guarded = auth
	}
	// As of-watchdog: max_inflight counts requests before the JWT check,
	// and /_/ready (below) reaches fn past both.
	function := accessLog(wd.logger, cfg.logCallID, wd.metrics.instrument(wd.limit.wrap(guarded)))
	healthH := wd.health.healthHandler()
	readyH := wd.health.readyHandler(wd.limit, cfg.readyPath, fn)
	// Not a ServeMux: its path cleaning would redirect function paths such
	// as "//a" that the function should see as sent.
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handlers enable full duplex, and net/http then drains a
		// body left unread (an upstream that could not be reached, a
		// function that answered early) only after it has stopped the
		// connection's background read, whose restart then panics with
		// "invalid concurrent Body.Read call". Closing the body here,
		// before the server finishes the request, drains it in time.
		defer r.Body.Close()
		switch r.URL.Path {
		case "/_/health":
			healthH.ServeHTTP(w, r)
		case "/_/ready":
			if cfg.mode == modeClassic {
				// The classic watchdog has no /_/ready: the function
				// answers it.
				function.ServeHTTP(w, r)
				return
			}
			readyH.ServeHTTP(w, r)
		default:
			function.ServeHTTP(w, r)
		}
	})
	server := &http.Server{
		Handler:      root,
		ReadTimeout:  cfg.readTimeout,
		WriteTimeout: cfg.writeTimeout,
		ErrorLog:     wd.logger,
	}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", wd.metrics.handler())
	metricsServer := &http.Server{
		Handler:           metricsMux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          wd.logger,
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- server.Serve(ln) }()
	go func() { serveErr <- metricsServer.Serve(mln) }()
	defer server.Close()
	defer metricsServer.Close()
	wd.logger.Printf("kiln watchdog %s: %s mode, listening on :%d, metrics on :%d, exec_timeout %s",
		version, cfg.mode, cfg.port, cfg.metricsPort, cfg.execTimeout)

	readyErr := make(chan error, 1)
	pollCtx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling()
	var childDone <-chan struct{}
	if child != nil {
		childDone = child.done
		upstream, err := url.Parse(cfg.upstreamURL)
		if err != nil {
			return fmt.Errorf("parsing upstream_url: %w", err)
		}
		wd.logger.Printf("started %q (pid %d), waiting for %s", cfg.process, child.cmd.Process.Pid, upstream.Redacted())
		go func() {
			if err := waitForUpstream(pollCtx, upstream); err != nil {
				return // stopped: shutting down
			}
			if err := wd.health.markReady(); err != nil {
				readyErr <- err
				return
			}
			wd.metrics.ready()
			wd.logger.Printf("ready: upstream answered in %d ms", time.Since(child.started).Milliseconds())
		}()
	} else if err := wd.health.markReady(); err != nil {
		return err
	} else {
		wd.metrics.ready()
	}

	select {
	case sig := <-signals:
		wd.logger.Printf("received %s, draining", sig)
		stopPolling()
		return wd.drain(signals, server, metricsServer, child)
	case <-childDone:
		return child.exitError()
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case err := <-readyErr:
		return err
	}
}

// drain takes the replica out of service, leaves time for the platform to
// notice (healthcheck_interval), lets in-flight requests finish within
// write_timeout, and only then stops the function, which therefore serves
// every request the watchdog accepted. A second signal skips the wait.
func (wd *watchdog) drain(signals <-chan os.Signal, server, metricsServer *http.Server, child *childProcess) error {
	if err := wd.health.shutdown(); err != nil {
		wd.logger.Print(err)
	}
	if d := wd.cfg.healthcheckInterval; d > 0 {
		wd.logger.Printf("waiting %s (healthcheck_interval) before closing the listener", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case sig := <-signals:
			t.Stop()
			wd.logger.Printf("received %s again, closing now", sig)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), wd.cfg.writeTimeout)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		wd.logger.Printf("requests still in flight after write_timeout of %s: %v", wd.cfg.writeTimeout, err)
	}
	mctx, mcancel := context.WithTimeout(context.Background(), time.Second)
	defer mcancel()
	_ = metricsServer.Shutdown(mctx)

	if child != nil {
		child.stop(childStopGrace)
		if child.err != nil {
			wd.logger.Printf("function process stopped: %v", child.err)
		}
	}
	wd.logger.Print("stopped")
	return nil
}

// limiter enforces max_inflight: a request beyond it gets 429 at once rather
// than queueing behind a function that is already at capacity.
type limiter struct {
	max      int64 // 0: unlimited
	inflight atomic.Int64
	rejected atomic.Int64 // requests refused, for kiln_function_rejected_total
}

func (l *limiter) full() bool {
	return l.max > 0 && l.inflight.Load() >= l.max
}

func (l *limiter) wrap(next http.Handler) http.Handler {
	if l.max <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer l.inflight.Add(-1)
		if l.inflight.Add(1) > l.max {
			l.rejected.Add(1)
			// faas-middleware's answer, which of-watchdog and the classic
			// watchdog give.
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-OpenFaaS-Internal", "faas-middleware")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, "Concurrent request limit exceeded. Max concurrent requests: %d\n", l.max)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// accessLog writes one line per function request. Kubernetes probes are
// skipped: at one every few seconds they would drown the function's own
// lines.
func accessLog(logger *log.Logger, logCallID bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.UserAgent(), "kube-probe") {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &responseRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.statusCode()
		callID := ""
		if logCallID {
			callID = fmt.Sprintf(" [%s]", r.Header.Get("X-Call-Id"))
		}
		logger.Printf("%s %s - %d %s - ContentLength: %dB (%.4fs)%s",
			r.Method, requestURI(r), code, http.StatusText(code), rec.written, time.Since(start).Seconds(), callID)
	})
}
