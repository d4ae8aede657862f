package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
)

func newDocsCmd(g *globals) *cobra.Command {
	var sf project.StackFlags
	var ds project.DocsSettings
	var saveInferred string
	var force bool
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Write one OpenAPI document (or page) of a stack's functions",
		Long: `Merge the OpenAPI fragments of the stack's functions into one OpenAPI 3.0.3
document, each function under /function/<name>, as the local gateway serves
it at /system/openapi.json. A function's fragment is openapi.yaml (.yml,
.json) in its handler folder, or the file its kiln/openapi annotation names
(relative to the stack file). A function without one gets a minimal
operation marked x-kiln-undocumented. --format html writes a self-contained
page with a try-it form per operation.

--save-inferred NAME fetches what the running local gateway (kiln dev, kiln
up --local) inferred from NAME's calls and writes it as NAME's fragment, to
edit; a fragment written by hand is kept unless --force. A saved fragment
is marked x-kiln-inferred in its info: remove the mark once you edit it,
and --save-inferred leaves it alone.`,
		Example: `  kiln docs -f stack.yml --output openapi.json
  kiln docs --format html --output api.html
  kiln docs --save-inferred hello`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(g.renderer(false, false).Event)
			if err != nil {
				return err
			}
			st, err := p.LoadStack(cmd.Context(), sf.Selection())
			if err != nil {
				return err
			}
			if saveInferred == "" {
				return p.WriteDocs(cmd.Context(), g.stdout, st, ds)
			}
			if cmd.Flags().Changed("output") || cmd.Flags().Changed("format") {
				return usage.Errorf("--save-inferred writes the function's fragment: drop --output and --format")
			}
			path, err := p.SaveInferred(cmd.Context(), st, saveInferred, ds.Gateway, force)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, path)
			return nil
		},
	}
	fl := cmd.Flags()
	sf.Add(fl)
	fl.StringVar(&ds.Format, "format", "openapi", "openapi (JSON; YAML when --output ends in .yaml or .yml) or html")
	fl.StringVarP(&ds.Output, "output", "o", "-", "file to write, - for stdout")
	fl.StringVarP(&ds.Gateway, "gateway", "g", "", "gateway URL: the document's server, and where --save-inferred asks (default the stack's provider.gateway, else $OPENFAAS_URL, else http://127.0.0.1:8080)")
	fl.StringVar(&saveInferred, "save-inferred", "", "write what the local gateway inferred from function `NAME`'s calls as its openapi.yaml")
	fl.BoolVar(&force, "force", false, "with --save-inferred, replace a fragment written by hand")
	return cmd
}
