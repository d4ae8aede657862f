package main

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
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/run"
	"github.com/kiln-build/kiln/stack"
)

type upFlags struct {
	build                buildFlags
	deploy               deployFlags
	local                bool
	port                 int
	secretsDir           string
	skipPush, skipDeploy bool
}

// addLocalFlags adds the local gateway's flags, shared by up and dev.
func addLocalFlags(fl *pflag.FlagSet, f *upFlags) {
	fl.BoolVar(&f.local, "local", false, "run the functions on a local gateway instead of deploying them")
	fl.IntVarP(&f.port, "port", "p", 8080, "port of the local gateway (with --local)")
	fl.StringVar(&f.secretsDir, "secrets-dir", "", "folder of the local gateway's secrets, a file per name, which faas-cli secret create fills (default: secrets in kiln's cache)")
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
	addLocalFlags(fl, &f)
	fl.BoolVar(&f.skipPush, "skip-push", false, "build into kiln's local image store only; deploy then finds the images there")
	fl.BoolVar(&f.skipDeploy, "skip-deploy", false, "build and push only")
	fl.StringVar(&f.build.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	return cmd
}

func runUp(cmd *cobra.Command, g *globals, f upFlags) error {
	ctx := cmd.Context()
	sb, err := buildStack(cmd, g, f, f.local || f.skipPush)
	if err != nil {
		return err
	}
	if err := printResults(g, sb.results, f.build.digestFile, false); err != nil {
		return err
	}
	if f.local {
		return serveLocal(ctx, g, sb.store, f, sb.sf, sb.names, sb.images)
	}
	if f.skipDeploy {
		return nil
	}
	return deployFunctions(ctx, g, f.deploy, sb.sf, sb.names, sb.images)
}

// stackBuild is what up and dev build before they deploy.
type stackBuild struct {
	sf      *stack.File
	names   []string // the selected functions, built or not
	targets []buildTarget
	store   *cache.Store
	builder *builder.Builder
	pub     builder.Publisher
	output  string
	results []buildOutput
	// images holds every selected function's: by digest for those built,
	// by the stack's name for skip_build ones and those with no lang.
	images map[string]deployImage
}

// buildStack builds the selected functions of the stack: into kiln's local
// image store when local, else pushed.
func buildStack(cmd *cobra.Command, g *globals, f upFlags, local bool) (*stackBuild, error) {
	ctx := cmd.Context()
	if f.build.parallel < 1 {
		return nil, usageError{fmt.Errorf("--parallel %d: want 1 or more", f.build.parallel)}
	}
	if f.local && (f.port <= 0 || f.port > 65535) {
		return nil, usageError{fmt.Errorf("--port %d: want 1-65535", f.port)}
	}
	if _, err := f.deploy.mode(); err != nil {
		return nil, err
	}
	bopts, err := f.build.builderOptions()
	if err != nil {
		return nil, err
	}
	sf, names, err := loadStack(cmd, g, f.build.stackFlags)
	if err != nil {
		return nil, err
	}
	targets, err := buildTargets(cmd, g, f.build, nil)
	if err != nil {
		return nil, err
	}
	store, err := g.store()
	if err != nil {
		return nil, err
	}
	b, err := newBuilder(g, store, bopts...)
	if err != nil {
		return nil, err
	}
	sb := &stackBuild{sf: sf, names: names, targets: targets, store: store, builder: b, pub: builder.NewRegistry(), output: "registry"}
	if local {
		sb.pub, sb.output = builder.NewLayout(localImages(store)), "local"
	}
	if sb.results, err = buildAll(ctx, g, b, sb.pub, sb.output, targets, f.build.parallel); err != nil {
		return nil, err
	}
	sb.images = map[string]deployImage{}
	format, _ := stack.ParseTagFormat(f.build.tag)
	for _, r := range sb.results {
		sb.images[r.Name] = deployImage{ref: r.Image, fprocess: r.fprocess}
	}
	for _, n := range names {
		if _, ok := sb.images[n]; !ok {
			image, err := sf.FunctionImage(ctx, n, format)
			if err != nil {
				return nil, err
			}
			sb.images[n] = deployImage{ref: image}
		}
	}
	return sb, nil
}

// localGateway is a gateway.Gateway served on loopback.
type localGateway struct {
	*gateway.Gateway
	srv  *http.Server
	base string // http://127.0.0.1:PORT
	// errc receives the server's error should it stop serving.
	errc chan error
}

func startLocalGateway(g *globals, store *cache.Store, f upFlags) (*localGateway, error) {
	secrets := f.secretsDir
	if secrets == "" {
		secrets = filepath.Join(store.Dir(), "secrets")
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.port))
	if err != nil {
		return nil, fmt.Errorf("starting the local gateway: %w", err)
	}
	lg := &localGateway{
		Gateway: gateway.New(localRunner(store), gateway.WithOutput(g.stdout, g.stderr), gateway.WithSecretsDir(secrets), gateway.WithVersion(version)),
		base:    "http://" + l.Addr().String(),
		errc:    make(chan error, 1),
	}
	lg.srv = &http.Server{Handler: lg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { lg.errc <- lg.srv.Serve(l) }()
	return lg, nil
}

// Close stops serving, letting requests in flight finish for up to 5 s,
// then stops every function.
func (lg *localGateway) Close() {
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lg.srv.Shutdown(shutdown) != nil {
		lg.srv.Close()
	}
	lg.Gateway.Close()
}

// serveLocal runs the functions on a local gateway until ctx is done.
func serveLocal(ctx context.Context, g *globals, store *cache.Store, f upFlags, sf *stack.File, names []string, images map[string]deployImage) error {
	lg, err := startLocalGateway(g, store, f)
	if err != nil {
		return err
	}
	defer lg.Close()
	if err := deployLocal(ctx, g, lg.Gateway, f.deploy, sf, names, images, lg.base); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "kiln: local gateway on %s; Ctrl-C stops every function\n", lg.base)
	select {
	case <-ctx.Done():
	case err := <-lg.errc:
		return fmt.Errorf("local gateway: %w", err)
	}
	fmt.Fprintln(g.stderr, "kiln: stopping the functions")
	return nil
}

// deployLocal deploys the named functions into the local gateway. A
// function that does not start is reported and the others keep running;
// only when none starts is it an error.
func deployLocal(ctx context.Context, g *globals, gw *gateway.Gateway, df deployFlags, sf *stack.File, names []string, images map[string]deployImage, base string) error {
	deps, err := newDeployments(df, sf, names, images)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range deps {
		start := time.Now()
		if err := gw.Deploy(ctx, *d, gateway.Upsert); err != nil {
			if ctx.Err() != nil {
				// Ctrl-C while starting: nothing failed.
				return nil
			}
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(g.stderr, "kiln: %s ready in %d ms: %s/function/%s\n", d.Service, time.Since(start).Milliseconds(), base, d.Service)
	}
	if len(errs) > 0 && len(errs) == len(deps) {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintf(g.stderr, "kiln: %v\n", err)
	}
	return nil
}

// localRunner runs instances with run.Image, finding images in kiln's local
// image store, else in their registry.
func localRunner(store *cache.Store) gateway.Runner {
	return func(ctx context.Context, in gateway.Instance) error {
		img, err := resolveForRun(ctx, store, in.Image)
		if err != nil {
			return err
		}
		var mounts []run.Mount
		for _, secret := range slices.Sorted(maps.Keys(in.Secrets)) {
			mounts = append(mounts, run.Mount{Source: in.Secrets[secret], Target: "/var/openfaas/secrets/" + secret, ReadOnly: true})
		}
		opts := []run.Option{run.WithCacheDir(store.Dir()), run.WithEnv(in.Env), run.WithStdout(in.Stdout), run.WithStderr(in.Stderr), run.WithMounts(mounts)}
		if in.ReadOnlyRoot {
			opts = append(opts, run.WithReadOnlyRoot())
		}
		// Unpacked here, not inside run.Image, only to time it.
		start := time.Now()
		if _, err := run.Unpack(ctx, img, store.Dir()); err != nil {
			return err
		}
		slog.DebugContext(ctx, "unpacked", "function", in.Name, "duration", time.Since(start))
		return run.Image(ctx, img, opts...)
	}
}

// resolveForRun finds image in kiln's local image store, by digest or by
// name (as faas-cli deploys send the stack's tag), else in its registry.
func resolveForRun(ctx context.Context, store *cache.Store, image string) (v1.Image, error) {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if h, err := v1.NewHash(digest); err == nil {
			if p, err := layout.FromPath(localImages(store)); err == nil {
				if img, err := p.Image(h); err == nil {
					return img, nil
				}
			}
		}
	} else if ref, err := name.ParseReference(image); err == nil {
		if img, err := builder.NewLayout(localImages(store)).Lookup(ref); err == nil {
			return img, nil
		}
	}
	return run.Resolve(ctx, image)
}
