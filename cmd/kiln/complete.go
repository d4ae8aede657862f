package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
	"github.com/kiln-build/kiln/runtime-images/bases"
)

// addCompletions gives the shells kiln's values: langs for --lang, the
// stack's functions for --filter, local images for run, bases for base
// build.
func addCompletions(g *globals, root *cobra.Command) {
	fixed := func(list func() []string) cobra.CompletionFunc {
		return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return list(), cobra.ShellCompDirectiveNoFileComp
		}
	}
	functions := func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		file, _ := cmd.Flags().GetString("yaml")
		st, err := project.LoadStack(context.Background(), project.Selection{File: file, Tag: "latest", Envsubst: true}, g.getenv)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return st.Names, cobra.ShellCompDirectiveNoFileComp
	}
	images := func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		p, err := g.project(nil)
		if len(args) > 0 || err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, _ := p.Images().Names(cmd.Context())
		return names, cobra.ShellCompDirectiveNoFileComp
	}
	for _, cmd := range root.Commands() {
		if cmd.Flags().Lookup("filter") != nil {
			cmd.RegisterFlagCompletionFunc("filter", functions)
		}
		switch cmd.Name() {
		case "build":
			cmd.RegisterFlagCompletionFunc("lang", fixed(project.BuiltLangs))
		case "run":
			cmd.ValidArgsFunction = images
		case "base":
			for _, sub := range cmd.Commands() {
				if sub.Name() == "build" {
					sub.ValidArgsFunction = fixed(bases.Names)
				}
			}
		}
	}
}
