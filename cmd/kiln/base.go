package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
	"github.com/kiln-build/kiln/publish"
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
	var platform, image, output string
	var insecure []string
	cmd := &cobra.Command{
		Use:   "build NAME",
		Short: "Build a runtime base into the cache, and optionally publish it",
		Example: `  kiln base build static
  kiln base build static --platform linux/arm64 --image localhost:5000/base/static --output registry
  kiln base build static --image base/static --output oci:./static`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			plat, err := v1.ParsePlatform(platform)
			if err != nil || plat.Architecture == "" {
				return usage.Errorf("--platform %q: want OS/ARCH, e.g. linux/arm64", platform)
			}
			if (output == "") != (image == "") {
				return usage.Errorf("--output and --image go together")
			}
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			b, err := p.Builder()
			if err != nil {
				return err
			}
			r := g.renderer(false)
			start := time.Now()
			res, err := b.BuildBase(cmd.Context(), args[0], *plat)
			if err != nil {
				return err
			}
			var size int64
			for _, l := range res.Layers {
				size += l.Size
				r.logf("  %-44s %9s", l.Name, humanSize(l.Size))
			}
			r.logf("built base %s for %s: %d layers, %s compressed, in %s", args[0], plat, len(res.Layers), humanSize(size), time.Since(start).Round(time.Millisecond))
			if output == "" {
				fmt.Fprintln(g.stdout, res.BaseDigest)
				return nil
			}
			ref, err := publish.ParseReference(image, insecure)
			if err != nil {
				return usage.Errorf("--image: %w", err)
			}
			out, err := p.ParseOutput(output)
			if err != nil {
				return err
			}
			d, err := out.Publish(cmd.Context(), res.Image, ref)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, d.Context().Name()+"@"+d.DigestStr())
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "linux/"+runtime.GOARCH, "platform of the base")
	cmd.Flags().StringVar(&image, "image", "", "reference to publish the base under")
	cmd.Flags().StringVar(&output, "output", "", `"registry", "oci:DIR" or "tar:FILE"`)
	cmd.Flags().StringSliceVar(&insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP; repeatable")
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
			names := args
			if len(names) == 0 {
				names = bases.Names()
			}
			if out != "-" {
				if info, err := os.Stat(out); err != nil || !info.IsDir() {
					return usage.Errorf("--out %s is not a directory; run in a kiln checkout or pass --out DIR (or - for stdout)", out)
				}
			}
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			f, err := project.NewFetcher(g.getenv, p.Cache().Dir(), debian.WithKeyring(keyring))
			if err != nil {
				return err
			}
			for _, name := range names {
				r, err := bases.Lookup(name)
				if err != nil {
					return err
				}
				lock, err := bases.Lock(cmd.Context(), r, f)
				if err != nil {
					return fmt.Errorf("locking %s: %w", name, err)
				}
				data, err := lock.Marshal()
				if err != nil {
					return err
				}
				if out == "-" {
					g.stdout.Write(data)
					continue
				}
				path := filepath.Join(out, bases.LockFileName(name))
				if err := atomicfile.Write(path, data); err != nil {
					return fmt.Errorf("writing %s: %w", path, err)
				}
				fmt.Fprintln(g.stdout, path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyring, "keyring", debian.DefaultKeyring, "OpenPGP keyring that signs the mirror's Release files")
	cmd.Flags().StringVar(&out, "out", filepath.Join("runtime-images", "bases"), "directory to write lock files to, or - for stdout")
	return cmd
}
