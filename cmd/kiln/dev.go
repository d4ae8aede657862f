package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/dev"
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
	addLocalFlags(fl, &f)
	return cmd
}

func runDev(cmd *cobra.Command, g *globals, f upFlags) error {
	ctx := cmd.Context()
	sb, err := buildStack(cmd, g, f, f.local)
	if err != nil {
		return err
	}

	// publish makes one set of images live: in the local gateway, or on
	// the remote one.
	var publish func(ctx context.Context, names []string) error
	if f.local {
		lg, err := startLocalGateway(g, sb.store, f)
		if err != nil {
			return err
		}
		defer lg.Close()
		go func() {
			if err := <-lg.errc; !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(g.stderr, "kiln: local gateway: %v\n", err)
			}
		}()
		publish = func(ctx context.Context, names []string) error {
			return deployLocal(ctx, g, lg.Gateway, f.deploy, sb.sf, names, sb.images, lg.base)
		}
	} else {
		publish = func(ctx context.Context, names []string) error {
			return deployFunctions(ctx, g, f.deploy, sb.sf, names, sb.images)
		}
	}
	if err := publish(ctx, sb.names); err != nil {
		return err
	}

	var built []string
	dirs := map[string]string{}
	byName := map[string]buildTarget{}
	for _, t := range sb.targets {
		built = append(built, t.fn.Name)
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
		r, err := buildOne(ctx, g, sb.builder, sb.pub, sb.output, byName[c.Function], false, &unused)
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
		sb.images[c.Function] = deployImage{ref: r.Image, fprocess: r.fprocess}
		if err := publish(ctx, []string{c.Function}); err != nil {
			fmt.Fprintf(g.stderr, "kiln: %v\nkiln: %s keeps serving the last good version\n", err, c.Function)
			continue
		}
		fmt.Fprintf(g.stderr, "kiln: %s: edit → ready in %d ms\n", c.Function, time.Since(c.First).Milliseconds())
	}
	return nil
}
