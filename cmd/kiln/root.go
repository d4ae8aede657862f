package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
)

// version is set by the Makefile (-ldflags -X main.version=...).
var version = "dev"

// globals are the settings every command shares, read once at the edge.
type globals struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	cacheDir       string
	verbose        bool
	// progress is --progress: auto, plain or json.
	progress string
}

// project opens the project in the cache directory, with progress shown
// as render says.
func (g *globals) project(progress project.Progress, opts ...project.Option) (*project.Project, error) {
	return project.New(g.cacheDir, append(g.options(progress), opts...)...)
}

// options are the project options every command shares.
func (g *globals) options(progress project.Progress) []project.Option {
	return []project.Option{
		project.WithGetenv(g.getenv),
		project.WithToolEnv(os.Environ()),
		project.WithProgress(progress),
		project.WithVersion(version),
		project.WithFunctionOutput(g.stdout, g.stderr),
	}
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Build OpenFaaS function images in seconds, without Docker",
		Long: `kiln turns a function's source folder into a small, layered OCI image without
a Docker daemon, pushes it to any registry and runs it locally. Images run
behind kiln's watchdog, which follows the OpenFaaS watchdog contract.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// Libraries log through slog; only -v shows it.
			level := slog.Level(100)
			if g.verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})))
			if !slices.Contains([]string{"auto", "plain", "json"}, g.progress) {
				return usage.Errorf("--progress %q: want auto, plain or json", g.progress)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.Version = version
	root.SetVersionTemplate(versionLine())
	root.PersistentFlags().StringVar(&g.cacheDir, "cache-dir", "", "cache directory (default $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log what kiln does to stderr")
	root.PersistentFlags().StringVar(&g.progress, "progress", "auto", "progress on stderr: auto (live on a terminal, else as plain for builds), plain (a line per finished step) or json (a JSON object per line)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usage.Wrap(err) })
	root.AddCommand(newBuildCmd(g), newRunCmd(g), newBaseCmd(g), newCacheCmd(g), newVersionCmd(g))
	root.AddCommand(newDeployCmd(g), newUpCmd(g), newDevCmd(g), newNewCmd(g), newPushCmd(g))
	root.AddCommand(newExecutorCmd(g), newBuilderCmd(g))
	addCompletions(g, root)
	return root
}

// execute runs the command line args. An unknown command is a usage
// error, as every other wrong command line.
func execute(ctx context.Context, root *cobra.Command, args []string) error {
	root.InitDefaultCompletionCmd(args...)
	// cobra answers the shells' hidden completion requests itself.
	isRequest := len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd)
	if _, _, err := root.Find(args); err != nil && !isRequest {
		return usage.Wrap(err)
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// args marks cobra's argument-count errors as usage errors.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error { return usage.Wrap(check(cmd, args)) }
}

// exitCoder is an error that carries its own exit code (a run's function).
type exitCoder interface{ ExitCode() int }

// reportError prints err and returns the exit code: 0 success, 130 an
// error after an interrupt (what the interrupt cut short is the cause, not
// an error of its own), 2 a usage error, a function's own code from `kiln
// run`, else 1.
func reportError(w io.Writer, err error, interrupted bool) int {
	switch {
	case err == nil:
		return 0
	case interrupted:
		fmt.Fprintln(w, "kiln: interrupted")
		return 130
	}
	var ec exitCoder
	if errors.As(err, &ec) && ec.ExitCode() > 0 {
		return ec.ExitCode()
	}
	fmt.Fprintf(w, "kiln: %s\n", strings.TrimRight(err.Error(), "\n"))
	if usage.Is(err) {
		return 2
	}
	return 1
}
