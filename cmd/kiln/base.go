package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/project"
	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

func newBaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "base",
		Short: "Build, list and lock the runtime bases",
		Long: `Runtime bases are assembled from Debian packages pinned, with their SHA256
sums, in lock files compiled into kiln. Packages come from
$KILN_DEBIAN_MIRROR (default ` + debian.DefaultMirror + `) and
$KILN_DEBIAN_SECURITY_MIRROR (default ` + debian.DefaultSecurityMirror + `).`,
	}
	cmd.AddCommand(newBaseBuildCmd(g), newBaseLsCmd(g), newBaseLockCmd(g))
	return cmd
}

func newBaseBuildCmd(g *globals) *cobra.Command {
	var f project.BaseFlags
	cmd := &cobra.Command{
		Use:   "build NAME",
		Short: "Build a runtime base into the cache, and optionally publish it",
		Example: `  kiln base build static
  kiln base build static --platform linux/arm64 --image localhost:5000/base/static --output registry
  kiln base build static --image base/static --output oci:./static`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(g.renderer(false, false).Event)
			if err != nil {
				return err
			}
			ref, err := p.BuildBase(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, ref)
			return nil
		},
	}
	f.Add(cmd.Flags())
	return cmd
}

func newBaseLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the runtime bases and their pinned packages",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BASE\tARCHITECTURES\tPACKAGES\tDESCRIPTION")
			for _, name := range bases.Names() {
				r, err := bases.Lookup(name)
				if err != nil {
					return err
				}
				var pkgs []string
				if r.Lock != nil && len(r.Architectures) > 0 {
					for _, p := range r.Lock.Architectures[r.Architectures[0]] {
						pkgs = append(pkgs, p.Name+"="+p.Version)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, strings.Join(r.Architectures, ","), strings.Join(pkgs, " "), r.Description)
			}
			return tw.Flush()
		},
	}
}

func newBaseLockCmd(g *globals) *cobra.Command {
	var keyring, out string
	cmd := &cobra.Command{
		Use:   "lock [NAME...]",
		Short: "Refresh base lock files from the mirror's signed indexes",
		Long: `Read the mirror's signed package indexes, pin the newest version of every
package each recipe names, and write NAME.lock.json into --out (by default
runtime-images/bases of a kiln checkout). Rebuild kiln to use new locks.`,
		Example: `  kiln base lock
  kiln base lock static --keyring /usr/share/keyrings/debian-archive-keyring.gpg --out -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			written, err := p.LockBases(cmd.Context(), args, keyring, out, g.stdout)
			for _, path := range written {
				fmt.Fprintln(g.stdout, path)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&keyring, "keyring", debian.DefaultKeyring, "OpenPGP keyring that signs the mirror's Release files")
	cmd.Flags().StringVar(&out, "out", filepath.Join("runtime-images", "bases"), "directory to write lock files to, or - for stdout")
	return cmd
}
