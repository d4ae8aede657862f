package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/job"
	"github.com/kiln-build/kiln/project"
)

func newJobCmd(g *globals) *cobra.Command {
	var f job.Flags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Build a stack's functions in a Kubernetes cluster, a Job per function",
		Long: `Build each selected function of a stack file in a Kubernetes Job that runs
kiln's executor, with no Docker, no privilege and no bucket: the function's
build context is pushed to its image's repository (tag context-<digest>) and
the Job fetches it from there by digest.

The pods follow the restricted Pod Security Standard (non-root, read-only
root filesystem, no capability). Their logs are streamed with the
function's name as prefix; each image is printed as NAME@DIGEST, read from
the pod's termination message. A failed build is one line naming the
function, the reason (OOMKilled, ImagePullBackOff, BackoffLimitExceeded,
DeadlineExceeded, ...) and the pod's last log lines.

The cluster is found as kubectl finds it. With --output yaml the contexts
are pushed and the Jobs printed, for GitOps, and nothing is created.`,
		Example: `  kiln job -f stack.yml --docker-config-secret regcred
  kiln job -f stack.yml --filter hello --namespace builds --memory-limit 2Gi --deploy
  kiln job -f stack.yml --dependency-secret .npmrc=npm-token --output yaml > jobs.yaml`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := g.renderer(false, false)
			open := func(opts ...project.Option) (*project.Project, error) { return g.project(r.Event, opts...) }
			results, err := f.Run(cmd.Context(), g.getenv, open, g.stderr, g.stdout)
			if err != nil || f.Output != "" {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(results)
			}
			for _, res := range results {
				fmt.Fprintln(g.stdout, res.Image)
			}
			return nil
		},
	}
	f.Add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}
