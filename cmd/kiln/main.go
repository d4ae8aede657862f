// Command kiln builds OpenFaaS function images without a Docker daemon,
// publishes them and runs them locally.
//
// Exit codes: 0 success; 1 the command failed (a build, push or run error);
// 2 the command line was wrong (unknown flag, missing argument); 130 the
// command was interrupted (Ctrl-C or SIGTERM) before it finished; a
// function run with `kiln run` that exits non-zero passes its own code on.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kiln-build/kiln/run"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == run.InitArg {
		run.InitMain()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == executorName {
		args = append([]string{executorName}, args...)
	}
	err := execute(ctx, newRootCmd(os.Stdout, os.Stderr, os.Getenv), args)
	interrupted := ctx.Err() != nil
	stop()
	os.Exit(reportError(os.Stderr, err, interrupted))
}
