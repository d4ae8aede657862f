package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builderapi"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
)

type builderServeFlags struct {
	port, concurrency   int
	secretFile, keyFile string
	maxBody             int64
	timeout             time.Duration
	insecure            []string
}

func newBuilderCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Serve OpenFaaS's Function Builder API"}
	var f builderServeFlags
	serve := &cobra.Command{
		Use:   "serve --secret-file FILE [--port N]",
		Short: "Build what faas-cli --remote-builder sends, and push it",
		Long: `Serve the OpenFaaS Function Builder API that 'faas-cli publish --remote-builder'
and 'faas-cli build' (OPENFAAS_REMOTE_BUILDER) use: POST /build with a tar of
faas-cli's build context, signed with HMAC-SHA256 of the payload secret, and
GET /publickey for sealed build secrets. Langs kiln has a pack for build with
it, others with the context's Dockerfile. Registry credentials come from
$DOCKER_CONFIG/config.json.`,
		Example: `  kiln builder serve --secret-file /var/openfaas/secrets/payload-secret --port 8080`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := f.server(g)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(f.port))
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
			fmt.Fprintf(g.stderr, "kiln builder: listening on %s\n", ln.Addr())
			go func() { <-cmd.Context().Done(); hs.Close() }()
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fl := serve.Flags()
	fl.IntVar(&f.port, "port", 8080, "port to listen on")
	fl.StringVar(&f.secretFile, "secret-file", "", "file holding the payload secret faas-cli signs with (--payload-secret); required")
	fl.StringVar(&f.keyFile, "private-key-file", "", "base64 Curve25519 private key build secrets are sealed to (default: one made at start)")
	fl.IntVar(&f.concurrency, "concurrency", 1, "builds run at once; other requests wait")
	fl.Int64Var(&f.maxBody, "max-body-size", 512<<20, "largest request body, in bytes")
	fl.DurationVar(&f.timeout, "build-timeout", 30*time.Minute, "longest build")
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "registry pushed to over plain HTTP; repeatable")
	cmd.AddCommand(serve)
	return cmd
}

// server checks the flags and makes the API's handler.
func (f *builderServeFlags) server(g *globals) (*builderapi.Server, error) {
	if err := project.CheckPort(f.port); err != nil {
		return nil, err
	}
	if f.secretFile == "" {
		return nil, usage.Errorf("--secret-file is required: requests are signed with it")
	}
	secret, err := os.ReadFile(f.secretFile)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	opts := []builderapi.Option{builderapi.WithConcurrency(f.concurrency), builderapi.WithMaxBodySize(f.maxBody), builderapi.WithBuildTimeout(f.timeout)}
	if f.keyFile != "" {
		raw, err := os.ReadFile(f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--private-key-file: %w", err)
		}
		k, err := builderapi.ParsePrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("--private-key-file %s: %w", f.keyFile, err)
		}
		opts = append(opts, builderapi.WithKeyPair(k))
	}
	cacheDir := executor.CacheDir(g.getenv)
	b := &builderapi.ExecutorBuilder{CacheDir: cacheDir, Getenv: g.getenv, Insecure: f.insecure,
		Options: append(g.options(nil), project.WithInsecureRegistries(f.insecure), project.WithToolEnv(executor.ToolEnv(os.Environ(), cacheDir)))}
	srv, err := builderapi.New(secret, b, opts...)
	if err != nil {
		return nil, usage.Errorf("--secret-file %s: %w", f.secretFile, err)
	}
	return srv, nil
}
