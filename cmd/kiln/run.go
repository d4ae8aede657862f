package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/run"
	"github.com/kiln-build/kiln/stack"
)

type runFlags struct {
	port     int
	env      []string
	pull     bool
	insecure []string
	platform string
	readOnly bool
	secrets  []string
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run IMAGE|oci:DIR[:NAME]|tar:FILE",
		Short: "Run a function image locally, without Docker",
		Long: `Run an image's entrypoint (kiln's watchdog) in its own mount, PID, UTS and IPC
namespaces on the host network. IMAGE is looked up in kiln's local image
store first (where 'kiln build' without --push puts images), then pulled.
The layers are unpacked once per image digest into the cache. Logs go to the
terminal; Ctrl-C or SIGTERM stops the function gracefully.

Locally nothing routes traffic to the function, so the watchdog's drain delay
after SIGTERM (healthcheck_interval) is 1s unless the image or --env sets it.`,
		Example: `  kiln run localhost:5000/hello:latest --port 8080
  kiln run oci:./out --port 9000 --env write_timeout=20s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.port, "port", "p", 8080, "port the watchdog listens on")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE for the function; repeatable")
	fl.BoolVar(&f.pull, "pull", false, "pull from the registry even if the local image store has the image")
	fl.StringSliceVar(&f.insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP (loopback always is); repeatable")
	fl.StringVar(&f.platform, "platform", "linux/"+runtime.GOARCH, "platform to pick from a multi-platform image")
	fl.BoolVar(&f.readOnly, "read-only", false, "read-only root filesystem with a tmpfs on /tmp, as readonly_root_filesystem")
	fl.StringArrayVar(&f.secrets, "secret", nil, "NAME=FILE: FILE is mounted read-only at /var/openfaas/secrets/NAME; repeatable")
	return cmd
}

func runRun(cmd *cobra.Command, g *globals, f runFlags, image string) error {
	ctx := cmd.Context()
	if f.port <= 0 || f.port > 65535 {
		return usageError{fmt.Errorf("--port %d: want 1-65535", f.port)}
	}
	if _, err := parseKeyValues("--env", f.env); err != nil {
		return err
	}
	mounts, err := secretMounts(f.secrets)
	if err != nil {
		return err
	}
	platform, err := v1.ParsePlatform(f.platform)
	if err != nil {
		return usageError{fmt.Errorf("--platform %q: %w", f.platform, err)}
	}
	store, err := g.store()
	if err != nil {
		return err
	}
	img, err := resolveImage(cmd, store, image, f, *platform)
	if err != nil {
		return err
	}
	env, err := withLocalDrain(img, f.env)
	if err != nil {
		return err
	}
	opts := []run.Option{run.WithCacheDir(store.Dir()), run.WithPort(f.port), run.WithEnv(env), run.WithStdout(g.stdout), run.WithStderr(g.stderr), run.WithMounts(mounts)}
	if f.readOnly {
		opts = append(opts, run.WithReadOnlyRoot())
	}
	g.logf("running %s on port %d", image, f.port)
	if err := run.Image(ctx, img, opts...); err != nil {
		return fmt.Errorf("running %s: %w", image, err)
	}
	return nil
}

func resolveImage(cmd *cobra.Command, store *cache.Store, image string, f runFlags, platform v1.Platform) (v1.Image, error) {
	ctx := cmd.Context()
	opts := []run.ResolveOption{run.WithPlatform(platform)}
	if strings.HasPrefix(image, "oci:") || strings.HasPrefix(image, "tar:") {
		return run.Resolve(ctx, image, opts...)
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, usageError{fmt.Errorf("image reference %q: %w", image, err)}
	}
	if !f.pull {
		if img, err := builder.NewLayout(localImages(store)).Lookup(ref); err == nil {
			return img, nil
		}
	}
	if slices.Contains(f.insecure, ref.Context().RegistryStr()) {
		opts = append(opts, run.WithInsecure())
	}
	return run.Resolve(ctx, image, opts...)
}

// withLocalDrain adds healthcheck_interval=1s to env unless the image or
// env already sets it.
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

// localImages is the OCI layout where `kiln build` without --push puts
// images for `kiln run`.
func localImages(store *cache.Store) string {
	return filepath.Join(store.Dir(), "images")
}

// secretMounts turns --secret NAME=FILE flags into read-only mounts at
// /var/openfaas/secrets/NAME, where OpenFaaS mounts a function's secrets.
func secretMounts(flags []string) ([]run.Mount, error) {
	secrets, err := parseKeyValues("--secret", flags)
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
			return nil, usageError{fmt.Errorf("--secret %s=%s: the name must be lowercase letters, digits and '-'", n, secrets[n])}
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, usageError{fmt.Errorf("--secret %s=%s: %s not found", n, secrets[n], secrets[n])}
		}
		mounts = append(mounts, run.Mount{Source: abs, Target: "/var/openfaas/secrets/" + n, ReadOnly: true})
	}
	return mounts, nil
}
