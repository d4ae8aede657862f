package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-build/kiln/cache"
)

// version is set by the Makefile (-ldflags -X main.version=...).
var version = "dev"

// globals are the settings every command shares, read once at the edge.
type globals struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	cacheDir       string
	verbose        bool
	// quiet (--quiet) hides progress; -v still shows it.
	quiet bool
}

func (g *globals) store() (*cache.Store, error) {
	dir := g.cacheDir
	if dir == "" {
		var err error
		if dir, err = cache.DefaultDir(g.getenv); err != nil {
			return nil, err
		}
	}
	return cache.Open(dir)
}

// progress reports whether to print progress: only to a terminal.
func (g *globals) progress() bool {
	f, ok := g.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (g *globals) logf(format string, args ...any) {
	if g.verbose || (g.progress() && !g.quiet) {
		fmt.Fprintf(g.stderr, format+"\n", args...)
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
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			// Libraries log through slog; only -v shows it.
			level := slog.Level(100)
			if g.verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.cacheDir, "cache-dir", "", "cache directory (default $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log what kiln does to stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newBuildCmd(g), newRunCmd(g), newBaseCmd(g), newCacheCmd(g), newVersionCmd(g))
	root.AddCommand(newDeployCmd(g), newUpCmd(g), newDevCmd(g), newNewCmd(g), newPushCmd(g))
	return root
}

// usageError marks a wrong command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCoder is an error that carries its own exit code (a run's function).
type exitCoder interface{ ExitCode() int }

func reportError(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ec exitCoder
	if errors.As(err, &ec) && ec.ExitCode() > 0 {
		return ec.ExitCode()
	}
	msg := err.Error()
	fmt.Fprintf(w, "kiln: %s\n", strings.TrimRight(msg, "\n"))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "arg(s)") {
		return 2
	}
	return 1
}
