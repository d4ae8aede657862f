package project

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/console"
	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/openapi"
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
	// inferrer learns the functions' APIs from their calls; stack is the
	// last one deployed (openapi.go).
	inferrer *openapi.Inferrer
	stack    atomic.Pointer[Stack]
}

// LocalSettings are the local gateway's settings.
type LocalSettings struct {
	// Port is the port on 127.0.0.1.
	Port int
	// SecretsDir holds the secrets, a file per name; "" means secrets in
	// the cache directory.
	SecretsDir string
	// NoAuth leaves /system/* and /ui/ open. Otherwise they ask for the
	// user admin and the password in PasswordFile, else the one kiln
	// generates once in its config folder (ConfigDir).
	NoAuth       bool
	PasswordFile string
	// AllowedHosts are names, NAME or NAME:PORT, the gateway answers to
	// besides 127.0.0.1, localhost and [::1].
	AllowedHosts []string
}

// StartLocal starts a local gateway on 127.0.0.1. Unless ls.NoAuth, its
// login is saved in faas-cli's config.yml (deploy.ConfigDir), where
// faas-cli and kiln deploy find it, and a GatewayLogin event says where.
func (p *Project) StartLocal(ls LocalSettings) (*Local, error) {
	secretsDir := ls.SecretsDir
	if secretsDir == "" {
		secretsDir = filepath.Join(p.cache.Dir(), "secrets")
	}
	opts := []gateway.Option{
		gateway.WithOutput(p.opts.stdout, p.opts.stderr), gateway.WithSecretsDir(secretsDir), gateway.WithVersion(p.opts.version),
		gateway.WithAllowedHosts(ls.AllowedHosts...), gateway.WithAllowedHosts(functionsGatewayNames()...), gateway.WithImageEnv(p.imageEnv),
		gateway.WithUI(func(g *gateway.Gateway) http.Handler { return console.New(g) }),
	}
	var login GatewayLogin
	var password string
	if !ls.NoAuth {
		var file string
		var err error
		if password, file, err = p.localPassword(ls.PasswordFile); err != nil {
			return nil, err
		}
		opts = append(opts, gateway.WithBasicAuth(gateway.DefaultUser, password))
		login = GatewayLogin{User: gateway.DefaultUser, PasswordFile: file}
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ls.Port))
	if err != nil {
		return nil, fmt.Errorf("starting the local gateway: %w", err)
	}
	lg := &Local{p: p, URL: "http://" + l.Addr().String(), errc: make(chan error, 1), inferrer: openapi.NewInferrer()}
	opts = append(opts, gateway.WithObserver(observeInto(lg.inferrer)), gateway.WithOpenAPI(lg.openAPI))
	lg.Gateway = gateway.New(p.runner(), opts...)
	if login.User != "" {
		dir, err := deploy.ConfigDir(p.opts.getenv)
		if err == nil {
			err = deploy.SaveBasicAuth(dir, lg.URL, login.User, password)
		}
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("saving the local gateway's login for faas-cli (or start it with --no-auth): %w", err)
		}
		login.URL, login.FaasConfig = lg.URL, filepath.Join(dir, "config.yml")
		p.emit(login)
	}
	p.builds.attach(lg.Gateway)
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
	lg.stack.Store(st)
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
			d.lg.p.builds.record(gateway.BuildEvent{Function: dep.Service, Kind: gateway.BuildFailed, Err: err.Error()})
			continue
		}
		d.lg.p.builds.record(gateway.BuildEvent{Function: dep.Service, Kind: gateway.BuildLive})
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

// ServeLocal runs the named functions on a local gateway until ctx is
// done.
func (p *Project) ServeLocal(ctx context.Context, st *Stack, images map[string]Image, ds DeploySettings, ls LocalSettings) error {
	lg, err := p.StartLocal(ls)
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

// inClusterGatewayNames are the names functions call the gateway by in
// an OpenFaaS cluster; inside a local run they lead to the host, where the
// local gateway is.
var inClusterGatewayNames = []string{"gateway", "gateway.openfaas"}

// functionsGatewayNames are the names, besides loopback ones, under which
// functions call the local gateway: the in-cluster ones and run's
// HostAliases. No web page can be served under them (no public domain ends
// in .internal or .openfaas, and gateway has no dot), so allowing them
// opens no door to DNS rebinding.
func functionsGatewayNames() []string {
	return append(slices.Clone(inClusterGatewayNames), run.HostAliases...)
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
		opts := []run.Option{
			run.WithCacheDir(p.cache.Dir()), run.WithEnv(in.Env), run.WithStdout(in.Stdout), run.WithStderr(in.Stderr), run.WithMounts(mounts),
			run.WithPublish(in.Listener, contract.WatchdogPort), run.WithHostNames(inClusterGatewayNames...),
		}
		if in.ReadOnlyRoot {
			opts = append(opts, run.WithReadOnlyRoot())
		}
		if in.Started != nil {
			opts = append(opts, run.WithStarted(in.Started))
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

// imageEnv returns the environment of an image as the runner finds it:
// the gateway reads the watchdog's mode there, to know where to ask
// whether an instance is ready.
func (p *Project) imageEnv(ctx context.Context, image string) ([]string, error) {
	// No OnPull: the runner reports the pull.
	img, err := p.images.Find(ctx, image, imagestore.WithResolveOptions(imagestore.WithTransport(p.transport)))
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config of %s: %w", image, err)
	}
	return cf.Config.Env, nil
}

// ConfigDir is kiln's config folder: $XDG_CONFIG_HOME/kiln, else
// ~/.config/kiln, from getenv.
func ConfigDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "kiln"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "kiln"), nil
	}
	return "", errors.New("finding kiln's config folder: neither XDG_CONFIG_HOME nor HOME is set")
}

// passwordFile is the file, in kiln's config folder, of the password kiln
// generates for the local gateway, named as OpenFaaS names its own.
const passwordFile = "basic-auth-password"

// localPassword returns the local gateway's password and the file it is
// in: file's content, trimmed, when file is given; else the one kept in
// kiln's config folder, generated the first time and kept 0600.
func (p *Project) localPassword(file string) (string, string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", usage.Errorf("--basic-auth-password-file: %w", err)
		}
		password := strings.TrimSpace(string(b))
		if password == "" {
			return "", "", usage.Errorf("--basic-auth-password-file %s: the file is empty", file)
		}
		return password, file, nil
	}
	dir, err := ConfigDir(p.opts.getenv)
	if err != nil {
		return "", "", err
	}
	password, err := keepPassword(filepath.Join(dir, passwordFile))
	if err != nil {
		return "", "", fmt.Errorf("the local gateway's password: %w", err)
	}
	return password, filepath.Join(dir, passwordFile), nil
}

// keepPassword returns the password in path, making it 0600 if others
// could read it; when there is none, it writes a random one first. Of two
// processes that generate one at once, both return the one that landed.
func keepPassword(path string) (string, error) {
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			password := strings.TrimSpace(string(b))
			if password == "" {
				return "", fmt.Errorf("%s is empty: delete it, and kiln makes another", path)
			}
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
				if err := os.Chmod(path, 0o600); err != nil {
					return "", err
				}
			}
			return password, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", err
		}
		var random [20]byte
		rand.Read(random[:])
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+passwordFile+".tmp-*")
		if err != nil {
			return "", err
		}
		_, err = tmp.WriteString(hex.EncodeToString(random[:]) + "\n")
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		// A link, unlike a rename, never replaces another's password.
		if err == nil {
			err = os.Link(tmp.Name(), path)
		}
		os.Remove(tmp.Name())
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
}
