package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
)

func newDeployCmd(g *globals) *cobra.Command {
	var sf project.StackFlags
	var df project.DeployFlags
	var rf project.RegistryFlags
	var output string
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy a stack file's functions to an OpenFaaS gateway, by image digest",
		Long: `Deploy the functions of a stack file to an OpenFaaS gateway with the REST
calls faas-cli deploy makes (PUT /system/functions, then POST on 404), with
credentials from faas-cli's config.yml ('faas-cli login').

Unlike faas-cli, kiln sends each built image by digest (NAME@sha256:...),
looked up in the registry, else in kiln's local image store, so a redeploy
rolls even when the tag did not change. skip_build functions are sent by
their tag. With --output k8s or crd nothing is deployed: the manifests are
printed instead.`,
		Example: `  kiln deploy -f stack.yml
  kiln deploy --gateway http://127.0.0.1:8080 --filter hello -e debug=true
  kiln deploy --output k8s > functions.yaml`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := df.Settings()
			if err != nil {
				return err
			}
			r := g.renderer(false, false)
			p, err := g.project(r.Event, rf.Option())
			if err != nil {
				return err
			}
			st, err := p.LoadStack(cmd.Context(), sf.Selection())
			if err != nil {
				return err
			}
			for _, w := range df.Warnings() {
				r.Event(w)
			}
			images, err := p.FindImages(cmd.Context(), st, rf.Insecure)
			if err != nil {
				return err
			}
			if output != "" {
				return project.WriteManifests(g.stdout, output, st, st.Names, images, ds)
			}
			to, err := p.Remote(st, ds)
			if err != nil {
				return err
			}
			return to.Deploy(cmd.Context(), st.Names, images)
		},
	}
	fl := cmd.Flags()
	sf.Add(fl)
	df.Add(fl)
	rf.Add(fl)
	fl.StringVar(&output, "output", "", `print manifests instead of deploying: "k8s" (Deployment + Service) or "crd" (openfaas.com/v1 Function)`)
	return cmd
}
