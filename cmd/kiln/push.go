package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
)

func newPushCmd(g *globals) *cobra.Command {
	var sf project.StackFlags
	var rf project.RegistryFlags
	var digestFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "push",
		Short: "Push a stack's images from kiln's local image store to their registries",
		Long: `Push the images that 'kiln build' (without --push) put in kiln's local image
store to their registries, as faas-cli push does after faas-cli build.
skip_build functions are left alone; an image with no registry or owner (no
'/') is refused, as by faas-cli.`,
		Example: `  kiln build -f stack.yml && kiln push -f stack.yml`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(g.renderer(false, false).Event, rf.Option())
			if err != nil {
				return err
			}
			st, err := p.LoadStack(cmd.Context(), sf.Selection())
			if err != nil {
				return err
			}
			results, err := p.Push(cmd.Context(), st, rf.Insecure)
			if err != nil {
				return err
			}
			return printResults(g, results, digestFile, asJSON)
		},
	}
	fl := cmd.Flags()
	sf.Add(fl)
	rf.Add(fl)
	fl.StringVar(&digestFile, "digest-file", "", "write NAME@DIGEST lines of the pushed images to this file")
	fl.BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}
