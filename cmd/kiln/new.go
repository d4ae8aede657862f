package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/scaffold"
)

func newNewCmd(g *globals) *cobra.Command {
	var o scaffold.Options
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
			path, err := scaffold.New(args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Function %s created in ./%s and added to %s\nRun it: kiln up --local\n", args[0], args[0], path)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Lang, "lang", "", "language: "+strings.Join(scaffold.Langs(), ", "))
	fl.StringVar(&o.Prefix, "prefix", "", "registry and owner for the image, e.g. ghcr.io/me")
	fl.StringVarP(&o.StackFile, "yaml", "f", "", "stack file to add the function to")
	fl.StringVarP(&o.Gateway, "gateway", "g", "http://127.0.0.1:8080", "gateway written into a new stack file")
	return cmd
}
