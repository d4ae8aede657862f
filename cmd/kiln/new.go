package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/scaffold"
	"github.com/kiln-build/kiln/stack"
)

func newNewCmd(g *globals) *cobra.Command {
	var lang, prefix, stackFile, gateway string
	cmd := &cobra.Command{
		Use:   "new NAME --lang LANG",
		Short: "Create a function: a handler folder and its stack file entry",
		Long: `Create the folder ./NAME with a starting handler for LANG, and add NAME to the
stack file (-f, else ./stack.yaml, else ./stack.yml, created if none exists),
as faas-cli new does. Languages: ` + strings.Join(scaffold.Langs(), ", ") + `.`,
		Example: `  kiln new hello --lang golang-middleware
  kiln new api --lang python3-http --prefix ghcr.io/me`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if lang == "" {
				return usage.Errorf("--lang is required: one of %s", strings.Join(scaffold.Langs(), ", "))
			}
			path := stackFile
			if path == "" {
				if p, err := stack.Find(""); err == nil {
					path = p
				} else {
					path = "stack.yaml"
				}
			}
			image := name + ":latest"
			if prefix != "" {
				image = strings.TrimSuffix(prefix, "/") + "/" + image
			}
			if err := scaffold.Function(name, name, lang); err != nil {
				return err
			}
			if err := scaffold.AddToStack(path, scaffold.Entry{Name: name, Lang: lang, Handler: "./" + name, Image: image}, gateway); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Function %s created in ./%s and added to %s\nRun it: kiln up --local\n", name, name, path)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&lang, "lang", "", "language: "+strings.Join(scaffold.Langs(), ", "))
	fl.StringVar(&prefix, "prefix", "", "registry and owner for the image, e.g. ghcr.io/me")
	fl.StringVarP(&stackFile, "yaml", "f", "", "stack file to add the function to")
	fl.StringVarP(&gateway, "gateway", "g", "http://127.0.0.1:8080", "gateway written into a new stack file")
	return cmd
}
