package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/run"
	"github.com/kiln-build/kiln/stack"
)

type upFlags struct {
	build                buildFlags
	deploy               deployFlags
	local                bool
	port                 int
	skipPush, skipDeploy bool
}

func newUpCmd(g *globals) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build, push and deploy a stack's functions, or run them on a local gateway",
		Long: `Build the functions of a stack file, push them and deploy them by digest to an
OpenFaaS gateway, as faas-cli up does (without Docker).

With --local, nothing is pushed: the functions are built into kiln's local
image store and run on a local gateway on 127.0.0.1:--port that serves
/function/<name>, /system/functions and /healthz, until Ctrl-C stops every
function.`,
		Example: `  kiln up -f stack.yml
  kiln up --local --port 8080
  kiln up --filter 'api-*' --parallel 4 --tag sha`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	addStackFlags(fl, &f.build.stackFlags)
	addBuildFlags(fl, &f.build)
	addDeployFlags(fl, &f.deploy)
	fl.BoolVar(&f.local, "local", false, "run the functions on a local gateway instead of deploying them")
	fl.IntVarP(&f.port, "port", "p", 8080, "port of the local gateway (with --local)")
	fl.BoolVar(&f.skipPush, "skip-push", false, "build into kiln's local image store only; deploy then finds the images there")
	fl.BoolVar(&f.skipDeploy, "skip-deploy", false, "build and push only")
	fl.StringVar(&f.build.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	return cmd
}

func runUp(cmd *cobra.Command, g *globals, f upFlags) error {
	ctx := cmd.Context()
	if f.build.parallel < 1 {
		return usageError{fmt.Errorf("--parallel %d: want 1 or more", f.build.parallel)}
	}
	if f.local && (f.port <= 0 || f.port > 65535) {
		return usageError{fmt.Errorf("--port %d: want 1-65535", f.port)}
	}
	sf, names, err := loadStack(cmd, g, f.build.stackFlags)
	if err != nil {
		return err
	}
	targets, err := buildTargets(cmd, g, f.build, nil)
	if err != nil {
		return err
	}
	store, err := g.store()
	if err != nil {
		return err
	}
	b, err := newBuilder(g, store)
	if err != nil {
		return err
	}
	var pub builder.Publisher = builder.NewRegistry()
	output := "registry"
	if f.local || f.skipPush {
		pub, output = builder.NewLayout(localImages(store)), "local"
	}
	results, err := buildAll(ctx, g, b, pub, output, targets, f.build.parallel)
	if err != nil {
		return err
	}
	if err := printResults(g, results, f.build.digestFile, false); err != nil {
		return err
	}
	images := map[string]deployImage{}
	for _, r := range results {
		images[r.Name] = deployImage{ref: r.Image, fprocess: r.fprocess}
	}
	for _, n := range names {
		if _, ok := images[n]; !ok {
			image, err := stack.ImageName(ctx, stack.TagLatest, sf.Functions[n].Image, "", ".")
			if err != nil {
				return err
			}
			images[n] = deployImage{ref: image}
		}
	}
	if f.local {
		return serveLocal(ctx, g, store, f, sf, names, images)
	}
	if f.skipDeploy {
		return nil
	}
	return deployFunctions(ctx, g, f.deploy, sf, names, images)
}

// serveLocal runs the functions on a local gateway until ctx is done.
func serveLocal(ctx context.Context, g *globals, store *cache.Store, f upFlags, sf *stack.File, names []string, images map[string]deployImage) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.port))
	if err != nil {
		return fmt.Errorf("starting the local gateway: %w", err)
	}
	gw := gateway.New(localRunner(store), gateway.WithOutput(g.stdout, g.stderr))
	defer gw.Close()
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	defer srv.Close()
	base := "http://" + l.Addr().String()
	if err := deployLocal(ctx, g, gw, f.deploy, sf, names, images, base); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "kiln: local gateway on %s; Ctrl-C stops every function\n", base)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("local gateway: %w", err)
	}
	fmt.Fprintln(g.stderr, "kiln: stopping the functions")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return nil
}

// deployLocal deploys the named functions into the local gateway. A
// function that does not start is reported and the others keep running;
// only when none starts is it an error.
func deployLocal(ctx context.Context, g *globals, gw *gateway.Gateway, df deployFlags, sf *stack.File, names []string, images map[string]deployImage, base string) error {
	o, err := overrides(df)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		fn := sf.Functions[n]
		fp, err := deploy.FProcess(fn, images[n].fprocess, "template")
		if err != nil {
			return err
		}
		d, err := deploy.NewDeployment(sf, fn, images[n].ref, fp, o)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := gw.Deploy(ctx, *d, false); err != nil {
			fmt.Fprintf(g.stderr, "kiln: %v\n", err)
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(g.stderr, "kiln: %s ready in %d ms: %s/function/%s\n", n, time.Since(start).Milliseconds(), base, n)
	}
	if len(errs) == len(names) {
		return errors.Join(errs...)
	}
	return nil
}

// localRunner runs instances with run.Image, finding images in kiln's local
// image store by digest, else in their registry.
func localRunner(store *cache.Store) gateway.Runner {
	return func(ctx context.Context, in gateway.Instance) error {
		img, err := resolveForRun(ctx, store, in.Image)
		if err != nil {
			return err
		}
		// Unpacked here, not inside run.Image, only to time it.
		start := time.Now()
		if _, err := run.Unpack(ctx, img, store.Dir()); err != nil {
			return err
		}
		slog.DebugContext(ctx, "unpacked", "function", in.Name, "duration", time.Since(start))
		return run.Image(ctx, img,
			run.WithCacheDir(store.Dir()),
			run.WithEnv(in.Env),
			run.WithStdout(in.Stdout),
			run.WithStderr(in.Stderr),
		)
	}
}

func resolveForRun(ctx context.Context, store *cache.Store, image string) (v1.Image, error) {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if h, err := v1.NewHash(digest); err == nil {
			if p, err := layout.FromPath(localImages(store)); err == nil {
				if img, err := p.Image(h); err == nil {
					return img, nil
				}
			}
		}
	}
	return run.Resolve(ctx, image)
}
