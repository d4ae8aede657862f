package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
)

func newRunCmd(g *globals) *cobra.Command {
	var f project.RunFlags
	cmd := &cobra.Command{
		Use:   "run IMAGE|oci:DIR[:NAME]|tar:FILE",
		Short: "Run a function image locally, without Docker",
		Long: `Run an image's entrypoint (kiln's watchdog) in its own namespaces, network
included, as a container runtime would. IMAGE is looked up in kiln's local image
store first (where 'kiln build' without --push puts images), then pulled.
The layers are unpacked once per image digest into the cache. Logs go to the
terminal; Ctrl-C or SIGTERM stops the function gracefully.

The function is served on 127.0.0.1 unless -p names an address, as in
-p 0.0.0.0:9000:8080. With slirp4netns installed it has outbound network,
and reaches services on the host's loopback as host.kiln.internal. Locally nothing routes traffic to the function, so the
watchdog's drain delay after SIGTERM (healthcheck_interval) is 1s unless the
image or --env sets it.`,
		Example: `  kiln run localhost:5000/hello:latest --port 8080
  kiln run oci:./out -p 9000:8080 --env write_timeout=20s`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(g.renderer(false, false).Event, f.Registry.Option())
			if err != nil {
				return err
			}
			g.renderer(false, false).Logf("running %s on %s", args[0], strings.Join(f.Publish, ", "))
			return p.Run(cmd.Context(), args[0], f, g.stdout, g.stderr)
		},
	}
	f.Add(cmd.Flags())
	return cmd
}
