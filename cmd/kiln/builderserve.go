package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builderapi"
)

func newBuilderCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Serve OpenFaaS's Function Builder API"}
	var f builderapi.ServeFlags
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
			return f.Serve(cmd.Context(), builderapi.Env{Getenv: g.getenv, Environ: os.Environ(), Options: g.options(nil), Log: g.stderr})
		},
	}
	f.Add(serve.Flags())
	cmd.AddCommand(serve)
	return cmd
}
