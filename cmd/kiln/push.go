package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/stack"
)

func newPushCmd(g *globals) *cobra.Command {
	var sf stackFlags
	var insecure []string
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
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, names, err := loadStack(cmd, g, sf)
			if err != nil {
				return err
			}
			store, err := g.store()
			if err != nil {
				return err
			}
			local := builder.NewLayout(localImages(store))
			reg := builder.NewRegistry()
			format, _ := stack.ParseTagFormat(sf.tag)
			var results []buildOutput
			for _, n := range names {
				fn := file.Functions[n]
				if fn.SkipBuild {
					continue
				}
				if !strings.Contains(fn.Image, "/") {
					return file.FuncError(fn, "image", "%q names no registry or owner; push needs one, e.g. ghcr.io/me/%s", fn.Image, fn.Image)
				}
				image, err := file.FunctionImage(cmd.Context(), n, format)
				if err != nil {
					return err
				}
				ref, err := builder.ParseReference(image, insecure)
				if err != nil {
					return file.FuncError(fn, "image", "%v", err)
				}
				img, err := local.Lookup(ref)
				if err != nil {
					return fmt.Errorf("%s: %w (build it first: kiln build)", n, err)
				}
				dref, err := reg.Publish(cmd.Context(), img, ref)
				if err != nil {
					return fmt.Errorf("pushing %s: %w", n, err)
				}
				results = append(results, buildOutput{Name: n, Image: dref.Context().Name() + "@" + dref.DigestStr(), Digest: dref.DigestStr(), Output: "registry"})
			}
			return printResults(g, results, digestFile, asJSON)
		},
	}
	fl := cmd.Flags()
	addStackFlags(fl, &sf)
	fl.StringSliceVar(&insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP (loopback always is); repeatable")
	fl.StringVar(&digestFile, "digest-file", "", "write NAME@DIGEST lines of the pushed images to this file")
	fl.BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}
