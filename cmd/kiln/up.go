package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
)

// upFlags are the flags of up and dev: a stack build, then a deploy.
type upFlags struct {
	stack                project.StackFlags
	build                project.BuildFlags
	deploy               project.DeployFlags
	local                project.LocalFlags
	skipPush, skipDeploy bool
	digestFile           string
}

func (f *upFlags) add(cmd *cobra.Command) {
	f.stack.Add(cmd.Flags())
	f.build.Add(cmd.Flags())
	f.deploy.Add(cmd.Flags())
	f.local.Add(cmd.Flags())
}

// upRun is what up and dev start from: the stack built, and where its
// functions go.
type upRun struct {
	p        *project.Project
	render   *renderer
	st       *project.Stack
	out      project.Output
	deploy   project.DeploySettings
	settings project.BuildSettings
}

// start checks the flags, reads the stack and opens the project; local
// builds go to the local image store, others are pushed.
func (f *upFlags) start(cmd *cobra.Command, g *globals, local bool) (*upRun, error) {
	popts, err := f.build.Options()
	if err != nil {
		return nil, err
	}
	if err := f.local.Check(); err != nil {
		return nil, err
	}
	ds, err := f.deploy.Settings()
	if err != nil {
		return nil, err
	}
	st, err := project.LoadStack(cmd.Context(), f.stack.Selection(), g.getenv)
	if err != nil {
		return nil, err
	}
	settings, err := f.build.Settings(g.getenv)
	if err != nil {
		return nil, err
	}
	r := g.renderer(f.build.Quiet)
	p, err := g.project(r.event, popts...)
	if err != nil {
		return nil, err
	}
	out := project.Registry()
	if local {
		out = p.LocalStore()
	}
	return &upRun{p: p, render: r, st: st, out: out, deploy: ds, settings: settings}, nil
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
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			u, err := f.start(cmd, g, f.local.Local || f.skipPush)
			if err != nil {
				return err
			}
			sb, err := u.p.BuildStack(ctx, u.st, u.settings, u.out, f.build.Parallel)
			if err != nil {
				return err
			}
			if err := printResults(g, sb.Results, f.digestFile, false); err != nil {
				return err
			}
			if f.local.Local {
				return u.p.ServeLocal(ctx, u.st, sb.Images, u.deploy, f.local.Port, f.local.SecretsDir)
			}
			if f.skipDeploy {
				return nil
			}
			to, err := u.p.Remote(u.st, u.deploy)
			if err != nil {
				return err
			}
			return to.Deploy(ctx, u.st.Names, sb.Images)
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&f.skipPush, "skip-push", false, "build into kiln's local image store only; deploy then finds the images there")
	fl.BoolVar(&f.skipDeploy, "skip-deploy", false, "build and push only")
	fl.StringVar(&f.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	return cmd
}
