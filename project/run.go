package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/run"
	"github.com/kiln-build/kiln/stack"
)

// RunFlags are the flags of `kiln run`.
type RunFlags struct {
	Port     int
	Env      []string
	Pull     bool
	Insecure []string
	Platform string
	ReadOnly bool
	Secrets  []string
}

// Add adds the flags to fl.
func (f *RunFlags) Add(fl *pflag.FlagSet) {
	fl.IntVarP(&f.Port, "port", "p", 8080, "port the watchdog listens on")
	fl.StringArrayVarP(&f.Env, "env", "e", nil, "environment variable KEY=VALUE for the function; repeatable")
	fl.BoolVar(&f.Pull, "pull", false, "pull from the registry even if the local image store has the image")
	fl.StringSliceVar(&f.Insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP (loopback always is); repeatable")
	fl.StringVar(&f.Platform, "platform", "linux/"+runtime.GOARCH, "platform to pick from a multi-platform image")
	fl.BoolVar(&f.ReadOnly, "read-only", false, "read-only root filesystem with a tmpfs on /tmp, as readonly_root_filesystem")
	fl.StringArrayVar(&f.Secrets, "secret", nil, "NAME=FILE: FILE is mounted read-only at /var/openfaas/secrets/NAME; repeatable")
}

// Run runs image, found in the local image store (unless the flags say
// --pull), else in its registry, or read from oci:DIR or tar:FILE, until
// ctx is done or the function exits. Its logs go to stdout and stderr.
func (p *Project) Run(ctx context.Context, image string, f RunFlags, stdout, stderr io.Writer) error {
	if err := CheckPort(f.Port); err != nil {
		return err
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
	fopts := []imagestore.FindOption{imagestore.WithInsecureRegistries(f.Insecure), imagestore.WithResolveOptions(imagestore.WithPlatform(*platform))}
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
	opts := []run.Option{run.WithCacheDir(p.cache.Dir()), run.WithPort(f.Port), run.WithEnv(env), run.WithStdout(stdout), run.WithStderr(stderr), run.WithMounts(mounts)}
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
