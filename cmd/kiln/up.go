package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/progress"
	"github.com/kiln-build/kiln/project"
)

// upFlags are the flags of up and dev.
type upFlags struct {
	project.UpFlags
	skipPush, skipDeploy bool
	digestFile           string
}

// open reads the stack and opens the project, with progress rendered;
// logging says that functions log to the terminal while builds run (kiln
// dev --local), which a live display would garble: their steps print as
// plain lines.
func (f *upFlags) open(cmd *cobra.Command, g *globals, local, logging bool) (*project.Up, *progress.Text, error) {
	mode := progress.Choose(g.progress, g.stderr, g.verbose, f.Build.Quiet, true)
	if mode == progress.Live && logging {
		mode = progress.Plain
	}
	r := progress.New(g.stdout, g.stderr, mode)
	u, err := f.Open(cmd.Context(), g.cacheDir, g.getenv, local, g.options(r.Event)...)
	return u, r, err
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
function. As OpenFaaS's gateway, it asks for a login on /system/*: user
admin, a password kiln generates once (or --basic-auth-password-file), saved
in faas-cli's config.yml so that faas-cli and kiln deploy log in.`,
		Example: `  kiln up -f stack.yml
  kiln up --local --port 8080
  kiln up --filter 'api-*' --parallel 4 --tag sha`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			u, _, err := f.open(cmd, g, f.Local.Local || f.skipPush, false)
			if err != nil {
				return err
			}
			sb, err := u.Build(ctx, f.Build.Parallel)
			if err != nil {
				return err
			}
			if err := printResults(g, sb.Results, f.digestFile, false); err != nil {
				return err
			}
			if f.Local.Local {
				return u.Project.ServeLocal(ctx, u.Stack, sb.Images, u.Deploy, f.Local.Settings())
			}
			if f.skipDeploy {
				return nil
			}
			to, err := u.Project.Remote(u.Stack, u.Deploy)
			if err != nil {
				return err
			}
			return to.Deploy(ctx, u.Stack.Names, sb.Images)
		},
	}
	fl := cmd.Flags()
	f.Add(fl)
	fl.BoolVar(&f.skipPush, "skip-push", false, "build into kiln's local image store only; deploy then finds the images there")
	fl.BoolVar(&f.skipDeploy, "skip-deploy", false, "build and push only")
	fl.StringVar(&f.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	return cmd
}
