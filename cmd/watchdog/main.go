package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in doc.go.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const usage = `Usage: watchdog [-version | -run-healthcheck]

Serves an OpenFaaS function; it is configured through environment variables.

  -version          print the version and exit
  -run-healthcheck  exit 0 if the lock file exists, 1 otherwise (for exec probes)
`

func main() {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	os.Exit(run(os.Args[1:], os.LookupEnv, signals, os.Stdout, os.Stderr))
}

func run(args []string, lookup func(string) (string, bool), signals <-chan os.Signal, stdout, stderr io.Writer) int {
	// Two flags do not need the flag package, whose size this binary,
	// copied into every image, would carry.
	if len(args) > 1 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if len(args) == 1 {
		switch args[0] {
		case "-version", "--version":
			fmt.Fprintf(stdout, "kiln watchdog %s\n", version)
			return exitOK
		case "-run-healthcheck", "--run-healthcheck":
			if _, err := os.Stat(lockFilePath()); err != nil {
				fmt.Fprintf(stderr, "watchdog: not healthy: %v\n", err)
				return exitFailed
			}
			return exitOK
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return exitOK
		default:
			fmt.Fprintf(stderr, "watchdog: unknown argument %q\n\n%s", args[0], usage)
			return exitUsage
		}
	}

	logger := log.New(stderr, "", log.LstdFlags)
	cfg, warnings, err := loadConfig(lookup)
	for _, w := range warnings {
		logger.Print(w)
	}
	if err != nil {
		// Status 1, as of-watchdog exits on a configuration error; 2 is
		// for a wrong command line, as its flag package has it.
		logger.Printf("configuration: %v", err)
		return exitFailed
	}
	if err := newWatchdog(cfg, logger, stdout, stderr).run(signals); err != nil {
		logger.Print(err)
		return exitFailed
	}
	return exitOK
}
