package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/run"
	"github.com/kiln-build/kiln/stack"
)

// RunFlags are the flags of `kiln run`.
type RunFlags struct {
	// Publish is -p, repeatable: PORT (the watchdog's, served on PORT),
	// HOST:CONTAINER or IP:HOST:CONTAINER, as docker run takes it.
	Publish  []string
	Env      []string
	Pull     bool
	Platform string
	ReadOnly bool
	Secrets  []string
	// Registry is applied when the project is opened (Option).
	Registry RegistryFlags
}

// Add adds the flags to fl.
func (f *RunFlags) Add(fl *pflag.FlagSet) {
	fl.StringArrayVarP(&f.Publish, "port", "p", []string{"8080"}, "where the function is served: PORT (the watchdog's, on 127.0.0.1:PORT), HOST:CONTAINER or IP:HOST:CONTAINER, as docker run -p; repeatable, e.g. -p 8081:8081 for the watchdog's metrics")
	f.Registry.Add(fl)
	fl.StringArrayVarP(&f.Env, "env", "e", nil, "environment variable KEY=VALUE for the function; repeatable")
	fl.BoolVar(&f.Pull, "pull", false, "pull from the registry even if the local image store has the image")
	fl.StringVar(&f.Platform, "platform", "linux/"+runtime.GOARCH, "platform to pick from a multi-platform image")
	fl.BoolVar(&f.ReadOnly, "read-only", false, "read-only root filesystem with a tmpfs on /tmp, as readonly_root_filesystem")
	fl.StringArrayVar(&f.Secrets, "secret", nil, "NAME=FILE: FILE is mounted read-only at /var/openfaas/secrets/NAME; repeatable")
}

// Run runs image, found in the local image store (unless the flags say
// --pull), else in its registry, or read from oci:DIR or tar:FILE, until
// ctx is done or the function exits. Its logs go to stdout and stderr.
func (p *Project) Run(ctx context.Context, image string, f RunFlags, stdout, stderr io.Writer) error {
	var pubs []Binding
	for _, v := range f.Publish {
		pub, err := ParsePublish(v)
		if err != nil {
			return err
		}
		pubs = append(pubs, pub)
	}
	if _, err := ParseKeyValues("--env", f.Env); err != nil {
		return err
	}
	mounts, err := secretMounts(f.Secrets)
	if err != nil {
		return err
	}
	platform, err := ParsePlatform("--platform", f.Platform)
	if err != nil {
		return err
	}
	fopts := append(p.findOptions(), imagestore.WithInsecureRegistries(f.Registry.Insecure), imagestore.WithResolveOptions(imagestore.WithPlatform(*platform)))
	if f.Pull {
		fopts = append(fopts, imagestore.Pull())
	}
	img, err := p.images.Find(ctx, image, fopts...)
	var re *imagestore.ReferenceError
	if errors.As(err, &re) {
		return usage.Wrap(err)
	}
	if err != nil {
		return err
	}
	env, err := withLocalDrain(img, f.Env)
	if err != nil {
		return err
	}
	env = append(env, contract.EnvPort+"="+strconv.Itoa(contract.WatchdogPort))
	opts := []run.Option{run.WithCacheDir(p.cache.Dir()), run.WithEnv(env), run.WithStdout(stdout), run.WithStderr(stderr), run.WithMounts(mounts)}
	for i, pub := range pubs {
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(pub.IP), Port: pub.Port})
		if err != nil {
			return fmt.Errorf("--port %s: %w", f.Publish[i], err)
		}
		defer l.Close()
		opts = append(opts, run.WithPublish(l, pub.Container))
	}
	if f.ReadOnly {
		opts = append(opts, run.WithReadOnlyRoot())
	}
	if err := run.Image(ctx, img, opts...); err != nil {
		return fmt.Errorf("running %s: %w", image, err)
	}
	return nil
}

// withLocalDrain adds healthcheck_interval=1s to env unless the image or
// env already sets it: locally nothing routes traffic to the function, so
// the watchdog need not wait for a load balancer before it drains.
func withLocalDrain(img v1.Image, env []string) ([]string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	if envlist.Has("healthcheck_interval", cf.Config.Env, env) {
		return env, nil
	}
	return append(slices.Clone(env), "healthcheck_interval=1s"), nil
}

// secretMounts turns --secret NAME=FILE flags into read-only mounts at
// /var/openfaas/secrets/NAME, where OpenFaaS mounts a function's secrets.
func secretMounts(flags []string) ([]run.Mount, error) {
	secrets, err := ParseKeyValues("--secret", flags)
	if err != nil {
		return nil, err
	}
	var mounts []run.Mount
	for _, n := range slices.Sorted(maps.Keys(secrets)) {
		abs, err := filepath.Abs(secrets[n])
		if err != nil {
			return nil, err
		}
		if !stack.DNSLabel.MatchString(n) {
			return nil, usage.Errorf("--secret %s=%s: the name must be lowercase letters, digits and '-'", n, secrets[n])
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, usage.Errorf("--secret %s=%s: %s not found", n, secrets[n], secrets[n])
		}
		mounts = append(mounts, run.Mount{Source: abs, Target: "/var/openfaas/secrets/" + n, ReadOnly: true})
	}
	return mounts, nil
}

// Binding is where `kiln run` serves a port of a function: on IP:Port of
// the host.
type Binding struct {
	IP        string
	Port      int
	Container int
}

// ParsePublish reads -p: HOST:CONTAINER or IP:HOST:CONTAINER as docker run
// does, and PORT as kiln always has, for PORT:8080, the port the watchdog
// serves (Run makes it listen there, whatever the image says). Without an
// IP it binds 127.0.0.1 only, so a function under development is not
// served to the network by accident.
func ParsePublish(s string) (Binding, error) {
	parts := strings.Split(s, ":")
	pub := Binding{IP: "127.0.0.1", Container: contract.WatchdogPort}
	container := strconv.Itoa(contract.WatchdogPort)
	var host string
	switch len(parts) {
	case 1:
		host = parts[0]
	case 2, 3:
		if len(parts) == 3 {
			if net.ParseIP(parts[0]) == nil {
				return Binding{}, usage.Errorf("--port %s: %q is not an IP address", s, parts[0])
			}
			pub.IP = parts[0]
		}
		host, container = parts[len(parts)-2], parts[len(parts)-1]
	default:
		return Binding{}, usage.Errorf("--port %s: want PORT, HOST:CONTAINER or IP:HOST:CONTAINER", s)
	}
	var err error
	if pub.Port, err = publishedPort(s, host); err != nil {
		return Binding{}, err
	}
	if pub.Container, err = publishedPort(s, container); err != nil {
		return Binding{}, err
	}
	return pub, nil
}

// publishedPort reads one port of -p value s.
func publishedPort(s, port string) (int, error) {
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, usage.Errorf("--port %s: %q is not a port", s, port)
	}
	if n < 1 || n > 65535 {
		return 0, usage.Errorf("--port %s: %d is not a port: want 1-65535", s, n)
	}
	return n, nil
}
