package project

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/run"
)

// Local is a local OpenFaaS gateway on loopback whose functions run from
// the project's local image store, else their registry.
type Local struct {
	*gateway.Gateway
	p   *Project
	srv *http.Server
	// URL is http://127.0.0.1:PORT.
	URL string
	// errc receives the server's error should it stop serving.
	errc chan error
}

// StartLocal starts a local gateway on 127.0.0.1:port. Secrets are files
// in secretsDir; "" means secrets in the cache directory.
func (p *Project) StartLocal(port int, secretsDir string) (*Local, error) {
	if secretsDir == "" {
		secretsDir = filepath.Join(p.cache.Dir(), "secrets")
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("starting the local gateway: %w", err)
	}
	lg := &Local{
		Gateway: gateway.New(p.runner(), gateway.WithOutput(p.opts.stdout, p.opts.stderr), gateway.WithSecretsDir(secretsDir), gateway.WithVersion(p.opts.version)),
		p:       p,
		URL:     "http://" + l.Addr().String(),
		errc:    make(chan error, 1),
	}
	lg.srv = &http.Server{Handler: lg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { lg.errc <- lg.srv.Serve(l) }()
	return lg, nil
}

// Done receives the server's error should it stop serving before Close.
func (lg *Local) Done() <-chan error { return lg.errc }

// Close stops serving, letting requests in flight finish for up to 5 s,
// then stops every function.
func (lg *Local) Close() {
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lg.srv.Shutdown(shutdown) != nil {
		lg.srv.Close()
	}
	lg.Gateway.Close()
}

// Deployer returns the deployer into the local gateway.
func (lg *Local) Deployer(st *Stack, ds DeploySettings) Deployer {
	return &localDeployer{lg: lg, st: st, ds: ds}
}

type localDeployer struct {
	lg *Local
	st *Stack
	ds DeploySettings
}

// Deploy implements Deployer. A function that does not start is reported
// and the others keep running; only when none starts is it an error.
func (d *localDeployer) Deploy(ctx context.Context, names []string, images map[string]Image) error {
	deps, err := Deployments(d.st, names, images, d.ds)
	if err != nil {
		return err
	}
	var errs []error
	for _, dep := range deps {
		start := time.Now()
		if err := d.lg.Gateway.Deploy(ctx, *dep, gateway.Upsert); err != nil {
			if ctx.Err() != nil {
				// Ctrl-C while starting: nothing failed.
				return nil
			}
			errs = append(errs, err)
			continue
		}
		d.lg.p.emit(Ready{Function: dep.Service, URL: d.lg.URL + "/function/" + dep.Service, Took: time.Since(start)})
	}
	if len(errs) > 0 && len(errs) == len(deps) {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		d.lg.p.emit(DeployFailed{Err: err})
	}
	return nil
}

// ServeLocal runs the named functions on a local gateway on
// 127.0.0.1:port until ctx is done.
func (p *Project) ServeLocal(ctx context.Context, st *Stack, images map[string]Image, ds DeploySettings, port int, secretsDir string) error {
	lg, err := p.StartLocal(port, secretsDir)
	if err != nil {
		return err
	}
	defer lg.Close()
	if err := lg.Deployer(st, ds).Deploy(ctx, st.Names, images); err != nil {
		return err
	}
	p.emit(Serving{URL: lg.URL})
	select {
	case <-ctx.Done():
	case err := <-lg.errc:
		return fmt.Errorf("local gateway: %w", err)
	}
	p.emit(GatewayStopping{})
	return nil
}

// runner runs instances with run.Image, finding images in the local image
// store, by digest or by name (as faas-cli deploys send the stack's tag),
// else in their registry.
func (p *Project) runner() gateway.Runner {
	return func(ctx context.Context, in gateway.Instance) error {
		img, err := p.images.Find(ctx, in.Image, p.findOptions()...)
		if err != nil {
			return err
		}
		var mounts []run.Mount
		for _, secret := range slices.Sorted(maps.Keys(in.Secrets)) {
			mounts = append(mounts, run.Mount{Source: in.Secrets[secret], Target: "/var/openfaas/secrets/" + secret, ReadOnly: true})
		}
		opts := []run.Option{run.WithCacheDir(p.cache.Dir()), run.WithEnv(in.Env), run.WithStdout(in.Stdout), run.WithStderr(in.Stderr), run.WithMounts(mounts)}
		if in.ReadOnlyRoot {
			opts = append(opts, run.WithReadOnlyRoot())
		}
		// Unpacked here, not inside run.Image, only to time it.
		start := time.Now()
		if _, err := run.Unpack(ctx, img, p.cache.Dir()); err != nil {
			return err
		}
		slog.DebugContext(ctx, "unpacked", "function", in.Name, "duration", time.Since(start))
		return run.Image(ctx, img, opts...)
	}
}
