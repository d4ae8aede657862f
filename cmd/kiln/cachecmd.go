package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "List or prune kiln's cache",
	}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List cached layers, most recently used first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			store := p.Cache()
			entries, err := store.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tLAYER\tDIGEST\tSIZE\tLAST USED")
			var total int64
			for _, e := range entries {
				total += e.Size
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Key.Hex[:12], e.Name, e.Digest.Hex[:12], humanSize(e.Size), e.LastUsed.Format(time.DateTime))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%d layers, %s, in %s\n", len(entries), humanSize(total), store.Dir())
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print the entries as JSON")

	var olderThan time.Duration
	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove cached layers not used recently",
		Example: `  kiln cache prune                  # layers unused for a week
  kiln cache prune --older-than 24h
  kiln cache prune --all            # everything: layers, unpacked and local images, downloads`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.project(nil)
			if err != nil {
				return err
			}
			store := p.Cache()
			cutoff := time.Now().Add(-olderThan)
			if all {
				cutoff = time.Now().Add(time.Hour)
			}
			res, err := store.Prune(cmd.Context(), cutoff)
			if err != nil {
				return err
			}
			if all {
				// Unpacked images, the local image store, downloaded
				// packages and runtimes: everything but the layer store,
				// which Prune has emptied.
				entries, err := os.ReadDir(store.Dir())
				if err != nil {
					return fmt.Errorf("pruning: %w", err)
				}
				for _, e := range entries {
					if e.Name() == "layers" {
						continue
					}
					if err := os.RemoveAll(filepath.Join(store.Dir(), e.Name())); err != nil {
						return fmt.Errorf("pruning %s: %w", e.Name(), err)
					}
				}
			}
			fmt.Fprintf(g.stdout, "removed %d layers, %s\n", res.Entries, humanSize(res.Bytes))
			return nil
		},
	}
	prune.Flags().DurationVar(&olderThan, "older-than", 7*24*time.Hour, "remove layers last used longer ago than this")
	prune.Flags().BoolVar(&all, "all", false, "remove everything kiln cached")
	cmd.AddCommand(ls, prune)
	return cmd
}
