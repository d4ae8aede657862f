package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/dev"
	"github.com/kiln-build/kiln/gateway"
)

func newDevCmd(g *globals) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Rebuild and redeploy a function on every save",
		Long: `Build and deploy the stack's functions (like 'kiln up'), then watch each
function's handler folder. On a change (debounced; .git, build output,
editor swap files and .gitignore'd paths ignored) only that function is
rebuilt, and only its changed layers, then published: with --local into the
local gateway, which switches to the new instance once it is healthy;
otherwise pushed and redeployed to the gateway by digest.

Each change prints the layers rebuilt and "edit → ready in N ms". A build
error is shown and the last good version keeps serving.`,
		Example: `  kiln dev --local
  kiln dev -f stack.yml --filter hello --gateway http://127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDev(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	addStackFlags(fl, &f.build.stackFlags)
	addBuildFlags(fl, &f.build)
	addDeployFlags(fl, &f.deploy)
	fl.BoolVar(&f.local, "local", false, "run the functions on a local gateway instead of deploying them")
	fl.IntVarP(&f.port, "port", "p", 8080, "port of the local gateway (with --local)")
	return cmd
}

func runDev(cmd *cobra.Command, g *globals, f upFlags) error {
	ctx := cmd.Context()
	if f.build.parallel < 1 {
		return usageError{fmt.Errorf("--parallel %d: want 1 or more", f.build.parallel)}
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
	if f.local {
		pub, output = builder.NewLayout(localImages(store)), "local"
	}
	results, err := buildAll(ctx, g, b, pub, output, targets, f.build.parallel)
	if err != nil {
		return err
	}
	images := map[string]deployImage{}
	for _, r := range results {
		images[r.Name] = deployImage{ref: r.Image, fprocess: r.fprocess}
	}

	// publish makes one set of images live: in the local gateway, or on
	// the remote one.
	var publish func(ctx context.Context, names []string) error
	if f.local {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.port))
		if err != nil {
			return fmt.Errorf("starting the local gateway: %w", err)
		}
		gw := gateway.New(localRunner(store), gateway.WithOutput(g.stdout, g.stderr))
		defer gw.Close()
		srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
		base := "http://" + l.Addr().String()
		publish = func(ctx context.Context, names []string) error {
			return deployLocal(ctx, g, gw, f.deploy, sf, names, images, base)
		}
	} else {
		publish = func(ctx context.Context, names []string) error {
			return deployFunctions(ctx, g, f.deploy, sf, names, images)
		}
	}
	var built []string
	for _, t := range targets {
		built = append(built, t.fn.Name)
	}
	if err := publish(ctx, names); err != nil {
		return err
	}

	dirs := map[string]string{}
	byName := map[string]buildTarget{}
	for _, t := range targets {
		dirs[t.fn.Name] = t.fn.Dir
		byName[t.fn.Name] = t
	}
	changes, err := dev.Watch(ctx, dirs)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "kiln: watching %s; Ctrl-C stops\n", strings.Join(built, ", "))
	// Changes are handled one at a time, so publishing needs no lock.
	var unused sync.Mutex
	for c := range changes {
		fmt.Fprintf(g.stderr, "kiln: %s: %s changed\n", c.Function, strings.Join(c.Paths, ", "))
		r, err := buildOne(ctx, g, b, pub, output, byName[c.Function], false, &unused)
		if err != nil {
			fmt.Fprintf(g.stderr, "kiln: %v\nkiln: %s keeps serving the last good version\n", err, c.Function)
			continue
		}
		var rebuilt []string
		for _, l := range r.Layers {
			if !l.Cached {
				rebuilt = append(rebuilt, fmt.Sprintf("%s (%s)", l.Name, l.Duration.Round(time.Millisecond)))
			}
		}
		if len(rebuilt) == 0 {
			rebuilt = []string{"none"}
		}
		fmt.Fprintf(g.stderr, "kiln: %s: rebuilt layers: %s\n", c.Function, strings.Join(rebuilt, ", "))
		images[c.Function] = deployImage{ref: r.Image, fprocess: r.fprocess}
		if err := publish(ctx, []string{c.Function}); err != nil {
			fmt.Fprintf(g.stderr, "kiln: %v\nkiln: %s keeps serving the last good version\n", err, c.Function)
			continue
		}
		fmt.Fprintf(g.stderr, "kiln: %s: edit → ready in %d ms\n", c.Function, time.Since(c.First).Milliseconds())
	}
	return nil
}
