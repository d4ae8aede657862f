package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/progress"
)

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "List, prune or verify kiln's cache",
	}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List cached layers, most recently used first, and the size of every kind of entry",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			inv, err := p.Cache().Inventory(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(inv)
			}
			return printInventory(g.stdout, inv)
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print the layers and the usage of every kind as JSON")

	var olderThan time.Duration
	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove what kiln cached and has not used recently",
		Long: `Remove what kiln cached and has not used recently: layers, Java outputs,
node_modules installs, Node runtimes, Debian downloads, unpacked images, the
blobs of the local image store that no image name reaches, and temporary files
of processes that died. Images a function is running from are kept. The local
images themselves and the local gateway's secrets go only with --all.`,
		Example: `  kiln cache prune                  # what was unused for a week
  kiln cache prune --older-than 24h
  kiln cache prune --all            # everything: layers, unpacked and local images, downloads`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			store := p.Cache()
			var removed cache.Usage
			if all {
				removed, err = store.Clear(cmd.Context())
			} else {
				removed, err = store.Prune(cmd.Context(), time.Now().Add(-olderThan))
			}
			if err != nil {
				return err
			}
			layers := removed.Of(cache.Layers)
			fmt.Fprintf(g.stdout, "removed %d layers, %s\n", layers.Entries, progress.HumanSize(layers.Bytes))
			for _, k := range removed {
				switch {
				case k.Kind == cache.Layers || k.Bytes == 0:
				case k.Entries == 0:
					fmt.Fprintf(g.stdout, "freed %s of %s\n", progress.HumanSize(k.Bytes), k.Kind.Noun())
				default:
					fmt.Fprintf(g.stdout, "removed %d %s, %s\n", k.Entries, k.Kind.Noun(), progress.HumanSize(k.Bytes))
				}
			}
			fmt.Fprintf(g.stdout, "%s in all\n", progress.HumanSize(removed.Total().Bytes))
			return nil
		},
	}
	prune.Flags().DurationVar(&olderThan, "older-than", 7*24*time.Hour, "remove what was last used longer ago than this")
	prune.Flags().BoolVar(&all, "all", false, "remove everything kiln cached, local images and secrets included")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every cached layer, image blob, download and unpacked rootfs; change nothing",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			v, err := p.Cache().Verify(cmd.Context())
			for _, pr := range v.Problems {
				fmt.Fprintf(g.stdout, "%s\t%s: %s\n", pr.Kind, pr.Path, pr.Reason)
			}
			return errors.Join(err, v.Err())
		},
	}
	cmd.AddCommand(ls, prune, verify)
	return cmd
}

func lastUsed(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.DateTime)
}

// printInventory prints the layers, then the usage of every kind.
func printInventory(w io.Writer, inv *cache.Inventory) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tLAYER\tDIGEST\tSIZE\tLAST USED")
	for _, e := range inv.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Key.Hex[:12], e.Name, e.Digest.Hex[:12], progress.HumanSize(e.Size), e.LastUsed.Format(time.DateTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tENTRIES\tSIZE\tLAST USED")
	for _, k := range inv.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", k.Kind, k.Entries, progress.HumanSize(k.Bytes), lastUsed(k.Newest))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d layers, %s, in %s\n", len(inv.Layers), progress.HumanSize(inv.Total.Bytes), inv.Dir)
	return nil
}
