package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/dev"
	"github.com/kiln-build/kiln/project"
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
error is shown and the last good version keeps serving; a function whose
first build fails waits for the fix.`,
		Example: `  kiln dev --local
  kiln dev -f stack.yml --filter hello --gateway http://127.0.0.1:8080`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			u, r, err := f.open(cmd, g, f.Local.Local, f.Local.Local)
			if err != nil {
				return err
			}
			targets, err := u.Project.StackTargets(ctx, u.Stack, u.Settings)
			if err != nil {
				return err
			}
			to, stop, err := f.deployer(g, u)
			if err != nil {
				return err
			}
			defer stop()
			return dev.NewLoop(u.Project, u.Stack, targets, u.Output, to, dev.WithProgress(r.Event), dev.WithParallel(f.Build.Parallel)).Run(ctx)
		},
	}
	f.Add(cmd.Flags())
	return cmd
}

// deployer is where dev makes images live: a local gateway it starts, or
// the remote one.
func (f *upFlags) deployer(g *globals, u *project.Up) (project.Deployer, func(), error) {
	if !f.Local.Local {
		to, err := u.Project.Remote(u.Stack, u.Deploy)
		return to, func() {}, err
	}
	lg, err := u.Project.StartLocal(f.Local.Settings())
	if err != nil {
		return nil, nil, err
	}
	go func() {
		if err := <-lg.Done(); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(g.stderr, "kiln: local gateway: %v\n", err)
		}
	}()
	return lg.Deployer(u.Stack, u.Deploy), lg.Close, nil
}
