package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kiln-build/kiln/dev"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/project"
)

// renderer prints the workflow's events: results and warnings always,
// progress only to a terminal (unless --quiet) or with -v.
type renderer struct {
	g        *globals
	progress bool
	// json, with --progress json, takes every event but the results on
	// stdout.
	json project.Progress
	mu   sync.Mutex
}

func (g *globals) renderer(quiet bool) *renderer {
	r := &renderer{g: g, progress: g.verbose || g.progress == "plain" || (g.progress == "auto" && g.terminal() && !quiet)}
	if g.progress == "json" {
		r.json = project.JSONLines(g.stderr)
	}
	return r
}

func (r *renderer) logf(format string, args ...any) {
	if r.progress {
		fmt.Fprintf(r.g.stderr, format+"\n", args...)
	}
}

func (r *renderer) warnf(format string, args ...any) {
	fmt.Fprintf(r.g.stderr, "kiln: "+format+"\n", args...)
}

// event renders one event; events come from several goroutines.
func (r *renderer) event(e project.Event) {
	if _, result := e.(project.Deployed); r.json != nil && !result {
		r.json(e)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := e.(type) {
	case project.BuildStarted:
		r.logf("building %s (%s, %s)", e.Function, e.Lang, e.Platform)
	case project.LayerDone:
		how := "cached"
		if !e.Layer.Cached {
			how = "built in " + e.Layer.Duration.Round(time.Millisecond).String()
		}
		r.logf("  %s %-16s %9s  %s", e.Function, e.Layer.Name, humanSize(e.Layer.Size), how)
	case project.Published:
		r.logf("  %s: built in %s, published to %s in %s", e.Function, e.Build.Round(time.Millisecond), e.Output, e.Publish.Round(time.Millisecond))
	case project.Skipped:
		if e.Warning {
			r.warnf("skipping %s: %s", e.Function, e.Reason)
		} else {
			r.logf("skipping %s: %s", e.Function, e.Reason)
		}
	case project.Warning:
		r.warnf("%s", e)
	case project.Deployed:
		fmt.Fprintf(r.g.stdout, "Deployed %s (%s). %d %s.\nURL: %s\n", e.Function, e.Image, e.Code, statusText[e.Code], e.URL)
	case project.Ready:
		r.warnf("%s ready in %d ms: %s", e.Function, e.Took.Milliseconds(), e.URL)
	case project.Serving:
		r.warnf("local gateway on %s; Ctrl-C stops every function", e.URL)
	case project.GatewayStopping:
		r.warnf("stopping the functions")
	case project.DeployFailed:
		r.warnf("%v", e.Err)
	case project.BaseBuilt:
		var size int64
		for _, l := range e.Layers {
			size += l.Size
			r.logf("  %-44s %9s", l.Name, humanSize(l.Size))
		}
		r.logf("built base %s for %s: %d layers, %s compressed, in %s", e.Name, e.Platform, len(e.Layers), humanSize(size), e.Took.Round(time.Millisecond))
	case dev.Watching:
		r.warnf("watching %s; Ctrl-C stops", strings.Join(e.Functions, ", "))
	case dev.Changed:
		r.warnf("%s: %s changed", e.Function, strings.Join(e.Paths, ", "))
	case dev.Failed:
		r.warnf("%v\nkiln: %s keeps serving the last good version", e.Err, e.Function)
	case dev.Rebuilt:
		var rebuilt []string
		for _, l := range e.Layers {
			if !l.Cached {
				rebuilt = append(rebuilt, fmt.Sprintf("%s (%s)", l.Name, l.Duration.Round(time.Millisecond)))
			}
		}
		if len(rebuilt) == 0 {
			rebuilt = []string{"none"}
		}
		r.warnf("%s: rebuilt layers: %s", e.Function, strings.Join(rebuilt, ", "))
	case dev.Live:
		r.warnf("%s: edit → ready in %d ms", e.Function, e.Took.Milliseconds())
	}
}

// statusText is how faas-cli names the gateway's answers to a deploy.
var statusText = map[int]string{200: "OK", 201: "Created", 202: "Accepted"}

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

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
