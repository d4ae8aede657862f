package builderapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
)

// ServeFlags are the flags of `kiln builder serve`.
type ServeFlags struct {
	Port, Concurrency   int
	SecretFile, KeyFile string
	MaxBody             int64
	Timeout             time.Duration
	Insecure            []string
}

// Add adds the flags to fl.
func (f *ServeFlags) Add(fl *pflag.FlagSet) {
	fl.IntVar(&f.Port, "port", 8080, "port to listen on")
	fl.StringVar(&f.SecretFile, "secret-file", "", "file holding the payload secret faas-cli signs with (--payload-secret); required")
	fl.StringVar(&f.KeyFile, "private-key-file", "", "base64 Curve25519 private key build secrets are sealed to (default: one made at start)")
	fl.IntVar(&f.Concurrency, "concurrency", 1, "builds run at once; other requests wait")
	fl.Int64Var(&f.MaxBody, "max-body-size", 512<<20, "largest request body, in bytes")
	fl.DurationVar(&f.Timeout, "build-timeout", 30*time.Minute, "longest build")
	fl.StringArrayVar(&f.Insecure, "insecure-registry", nil, "registry pushed to over plain HTTP; repeatable")
}

// Env is what a server takes from its process: the environment (the
// cache folder, SOURCE_DATE_EPOCH, the tools'), the project options of
// its builds (progress, version) and where it says it listens.
type Env struct {
	Getenv  func(string) string
	Environ []string
	Options []project.Option
	Log     io.Writer
}

// Serve serves the builder API on the flags' port until ctx ends.
func (f *ServeFlags) Serve(ctx context.Context, env Env) error {
	srv, err := f.server(env)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(f.Port))
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(env.Log, "kiln builder: listening on %s\n", ln.Addr())
	go func() { <-ctx.Done(); hs.Close() }()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// server checks the flags and makes the API's handler.
func (f *ServeFlags) server(env Env) (*Server, error) {
	if err := project.CheckPort(f.Port); err != nil {
		return nil, err
	}
	if f.SecretFile == "" {
		return nil, usage.Errorf("--secret-file is required: requests are signed with it")
	}
	secret, err := os.ReadFile(f.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	var opts []Option
	for _, fo := range []struct {
		flag string
		opt  Option
	}{{"--concurrency", WithConcurrency(f.Concurrency)}, {"--max-body-size", WithMaxBodySize(f.MaxBody)}, {"--build-timeout", WithBuildTimeout(f.Timeout)}} {
		// Checked here, where the option's flag is known.
		if err := fo.opt(&options{}); err != nil {
			return nil, usage.Errorf("%s: %w", fo.flag, err)
		}
		opts = append(opts, fo.opt)
	}
	if f.KeyFile != "" {
		raw, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--private-key-file: %w", err)
		}
		k, err := ParsePrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("--private-key-file %s: %w", f.KeyFile, err)
		}
		opts = append(opts, WithKeyPair(k))
	}
	cacheDir := executor.CacheDir(env.Getenv)
	b := &ExecutorBuilder{CacheDir: cacheDir, Getenv: env.Getenv, Insecure: f.Insecure,
		Options: slices.Concat(env.Options, []project.Option{project.WithInsecureRegistries(f.Insecure), project.WithToolEnv(executor.ToolEnv(env.Environ, cacheDir))})}
	srv, err := New(secret, b, opts...)
	if err != nil {
		return nil, usage.Errorf("--secret-file %s: %w", f.SecretFile, err)
	}
	return srv, nil
}
