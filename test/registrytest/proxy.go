package registrytest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what a Proxy does to a request instead of passing it on.
type Fault int

const (
	// Error500 answers 500 Internal Server Error.
	Error500 Fault = iota
	// Error503 answers 503 Service Unavailable.
	Error503
	// Reset closes the connection with a TCP reset, answering nothing.
	Reset
	// Stall waits Faults.Stall, then passes the request on.
	Stall
)

func (f Fault) String() string {
	return [...]string{"500", "503", "reset", "stall"}[f]
}

// Faults says which requests a Proxy spoils, and how.
type Faults struct {
	// Rate is the share of requests that meet a fault, from 0 to 1.
	Rate float64
	// Kinds are the faults drawn from, evenly. Default: all four.
	Kinds []Fault
	// Stall is how long a Stall lasts. Default 1 s.
	Stall time.Duration
	// Silent makes the proxy answer nothing at all: every request is read
	// and held until the client gives up, as a registry that accepts
	// connections and never answers.
	Silent bool
}

// Proxy is an HTTP proxy on 127.0.0.1 in front of a registry that injects
// faults into a share of the requests.
type Proxy struct {
	// Host is the proxy's HOST:PORT: push to it instead of the registry.
	Host string

	l    net.Listener
	srv  *http.Server
	next http.Handler

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	closed chan struct{}

	requests, injected atomic.Int64
}

// StartProxy starts a proxy in front of the registry at target
// (HOST:PORT), spoiling requests as f says, with faults drawn from a
// random source seeded with seed.
func StartProxy(target string, f Faults, seed uint64) (*Proxy, error) {
	u, err := url.Parse("http://" + target)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	p := &Proxy{Host: l.Addr().String(), l: l, next: rp, rng: rand.New(rand.NewPCG(seed, seed)), closed: make(chan struct{})}
	p.SetFaults(f)
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)
	return p, nil
}

// SetFaults changes the faults of the requests to come.
func (p *Proxy) SetFaults(f Faults) {
	if len(f.Kinds) == 0 {
		f.Kinds = []Fault{Error500, Error503, Reset, Stall}
	}
	if f.Stall == 0 {
		f.Stall = time.Second
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

// Requests is how many requests the proxy received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected is how many requests met a fault.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Close stops the proxy and lets go of the requests it holds.
func (p *Proxy) Close() error {
	close(p.closed)
	err := p.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	f := p.faults
	spoil := f.Rate > 0 && p.rng.Float64() < f.Rate
	kind := f.Kinds[p.rng.IntN(len(f.Kinds))]
	p.mu.Unlock()
	if f.Silent {
		p.injected.Add(1)
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	}
	if !spoil {
		p.next.ServeHTTP(w, r)
		return
	}
	p.injected.Add(1)
	switch kind {
	case Error500, Error503:
		code := http.StatusInternalServerError
		if kind == Error503 {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, fmt.Sprintf("registrytest: injected %s", kind), code)
	case Reset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "registrytest: cannot reset", http.StatusInternalServerError)
			return
		}
		c, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	case Stall:
		select {
		case <-time.After(f.Stall):
		case <-r.Context().Done():
			return
		case <-p.closed:
			return
		}
		p.next.ServeHTTP(w, r)
	}
}
