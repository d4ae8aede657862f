package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/progress"
	"github.com/kiln-build/kiln/project"
)

// renderer is the progress renderer of a command: builds says that it
// builds, whose steps show without a terminal too (progress.Choose).
func (g *globals) renderer(builds, quiet bool) *progress.Text {
	return progress.New(g.stdout, g.stderr, progress.Choose(g.progress, g.stderr, g.verbose, quiet, builds))
}

// printResults writes --digest-file and prints NAME@DIGEST lines, or JSON.
func printResults(g *globals, results []project.Result, digestFile string, asJSON bool) error {
	if digestFile != "" {
		var sb strings.Builder
		for _, r := range results {
			fmt.Fprintln(&sb, r.Image)
		}
		if err := atomicfile.Write(digestFile, []byte(sb.String())); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for _, r := range results {
		fmt.Fprintln(g.stdout, r.Image)
	}
	return nil
}
