package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
)

// newExecutorImageCmd is `kiln executor image`: the images the executor
// runs in.
func newExecutorImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the images the executor runs in, with kiln and the language toolchains",
	}
	cmd.AddCommand(newExecutorImageBuildCmd(g), newExecutorImageLockCmd(g))
	return cmd
}

func newExecutorImageBuildCmd(g *globals) *cobra.Command {
	var f project.ExecutorImageFlags
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the executor images from pinned inputs, and push them",
		Long: `Build the images kiln job runs, from the inputs pinned in kiln's
executorimage/images.lock.json: kiln at /kaniko/executor (and kiln on PATH),
Debian's bookworm base with git and CA certificates, and per language its
toolchain: Go from the Go proxy, Node and npm from the npm registry, the JDK
17 and Maven, Python 3 from Debian. Tags: go, node, python, java, and all
with every toolchain. Toolchain versions are in dev.kiln.toolchain.* labels.
The same kiln binary and lock give the same digests on any machine.

After --push, the all image's REPO:all@sha256:… is recorded in kiln's config
folder (` + project.ExecutorImageFile + `): kiln job's default --executor-image.`,
		Example: `  kiln executor image build --push registry.example.com/kiln/executor
  kiln executor image build --only go --output oci:./executor`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(g.renderer(false, false).Event)
			if err != nil {
				return err
			}
			images, recorded, err := p.BuildExecutorImages(cmd.Context(), f)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, img := range images {
				fmt.Fprintf(tw, "%s\t%s\t%.1f MB\n", img.Name, img.Image, float64(img.Size)/1e6)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if recorded != "" {
				fmt.Fprintf(g.stderr, "kiln job's default executor image is now in %s\n", recorded)
			}
			return nil
		},
	}
	exe, _ := os.Executable()
	f.Add(cmd.Flags(), exe)
	return cmd
}

func newExecutorImageLockCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Refresh the executor images' lock from the toolchains' sources",
		Long: `Pin what executorimage/images.yaml names as its sources serve it now: the Go
toolchain zips (checked against the checksum database), Node and npm from the
npm registry, and the Debian groups resolved on the debian base's lock from
the mirror's signed indexes. Writes images.lock.json into --out; rebuild
kiln to use it.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			path, data, err := p.LockExecutorImages(cmd.Context(), out)
			if err != nil {
				return err
			}
			if path == "" {
				_, err = g.stdout.Write(data)
				return err
			}
			fmt.Fprintln(g.stdout, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "executorimage", "directory to write images.lock.json to, or - for stdout")
	return cmd
}
