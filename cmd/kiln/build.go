package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/project"
)

type buildFlags struct {
	stack               project.StackFlags
	build               project.BuildFlags
	lang, image, fnName string
	push, json          bool
	output, digestFile  string
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build function images from a stack file or a handler folder",
		Long: `Build function images without Docker. With DIR, build the handler folder DIR
(--lang and --image required); without it, build the functions of the stack
file (-f, else ./stack.yaml, else ./stack.yml).

Without --push or --output the image goes to kiln's local image store,
where 'kiln run' finds it. Each built image is printed as NAME@DIGEST.`,
		Example: `  kiln build ./hello --lang golang-middleware --image localhost:5000/hello --push
  kiln build -f stack.yml --filter hello --push
  kiln build -f stack.yml --parallel 4 --tag sha --push
  kiln build ./hello --lang go --image hello:dev --output oci:./out
  kiln build ./hello --lang golang-middleware --image hello --output tar:hello.tar --platform linux/arm64`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, settings, err := f.open(g)
			if err != nil {
				return err
			}
			var dir *project.Dir
			if len(args) == 1 {
				dir = &project.Dir{Path: args[0], Lang: f.lang, Image: f.image, Name: f.fnName}
			} else if f.lang != "" || f.image != "" {
				return usage.Errorf("--lang and --image go with DIR; a stack file names them per function")
			}
			targets, err := p.Targets(cmd.Context(), f.stack.Selection(), dir, settings)
			if err != nil {
				return err
			}
			out, err := p.ParseOutput(f.output)
			if err != nil {
				return err
			}
			results, err := p.Build(cmd.Context(), targets, out, f.build.Parallel)
			if err != nil {
				return err
			}
			return printResults(g, results, f.digestFile, f.json)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lang, "lang", "", "language of DIR: "+strings.Join(packs.Listed(), ", ")+", ...")
	fl.StringVar(&f.image, "image", "", "image reference for DIR, e.g. registry.example.com/team/fn:1.0")
	fl.StringVar(&f.fnName, "name", "", "function name for DIR (default: the folder's name)")
	f.stack.Add(fl)
	f.build.Add(fl)
	fl.BoolVar(&f.push, "push", false, "push to the image's registry (same as --output registry)")
	fl.StringVar(&f.output, "output", "", `where images go: "registry", "oci:DIR" or "tar:FILE" (default: the local image store)`)
	fl.StringVar(&f.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	fl.BoolVar(&f.json, "json", false, "print the results as JSON")
	return cmd
}

// open checks the flags and opens the project they build with.
func (f *buildFlags) open(g *globals) (*project.Project, project.BuildSettings, error) {
	popts, err := f.build.Options()
	if err != nil {
		return nil, project.BuildSettings{}, err
	}
	settings, err := f.build.Settings(g.getenv)
	if err != nil {
		return nil, project.BuildSettings{}, err
	}
	if f.push {
		if f.output != "" && f.output != "registry" {
			return nil, project.BuildSettings{}, usage.Errorf("--push and --output %s disagree; give one", f.output)
		}
		f.output = "registry"
	}
	p, err := g.project(g.renderer(true, f.build.Quiet).Event, popts...)
	return p, settings, err
}
