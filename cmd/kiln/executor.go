package main

import (
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/executor"
)

// executorName is the program name under which kiln is kaniko's
// executor: an image ships kiln as /kaniko/executor, and kaniko's Job
// manifests, which pass flags only, run it unchanged.
const executorName = "executor"

func newExecutorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "executor --context CONTEXT (--destination IMAGE... | --no-push) [flags]",
		Short: "Build in a pod as kaniko's executor does, with kaniko's flags",
		Long: `A drop-in for kaniko's executor: the same flags, the same contexts (a folder,
tar://, http(s)://, git://, and kiln's own oci:// build contexts that kiln job
pushes), credentials from $DOCKER_CONFIG/config.json. A context with a
stack.yml, or --lang, builds with kiln's language packs; any other builds its
Dockerfile. Run as 'executor' (e.g. /kaniko/executor), kiln is this command.
kaniko's snapshot and retry flags are accepted and have no effect (see
--help of each); the cache is $KILN_CACHE_DIR, else kiln's default, else
$TMPDIR/kiln-cache. Language builds run as any user on a read-only root (/tmp
writable), under the restricted Pod Security Standard. A Dockerfile RUN runs
in a user namespace of its own: in a pod it needs hostUsers: false,
runAsUser: 0, procMount: Unmasked, and seccomp and AppArmor Unconfined.`,
		Example: `  kiln executor --context dir:///workspace --destination registry.example.com/team/fn:1.0
  kiln executor -c oci://registry.example.com/ctx@sha256:... -d registry.example.com/fn --digest-file /dev/termination-log`,
		// kaniko's -v and --cache-dir differ from kiln's: the executor
		// parses its own command line.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// kaniko's one subcommand.
			if len(args) == 1 && args[0] == "version" {
				fmt.Fprint(g.stdout, versionLine())
				return nil
			}
			if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
				fmt.Fprintf(g.stdout, "%s\n\nUsage:\n  %s\n\nFlags:\n%s", cmd.Long, cmd.Use, new(executor.Flags).NewFlagSet().FlagUsages())
				return nil
			}
			f, err := executor.Parse(args, g.getenv)
			if err != nil {
				return err
			}
			if f.Debug() {
				slog.SetDefault(slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
			}
			env := executor.Env{Getenv: g.getenv, Stdin: os.Stdin, Environ: os.Environ()}
			res, err := executor.Run(cmd.Context(), f, env, g.options(g.renderer(true, false).Event)...)
			if err != nil {
				return err
			}
			for _, line := range res.NameDigests() {
				fmt.Fprintln(g.stdout, line)
			}
			if len(res.Refs) == 0 {
				fmt.Fprintln(g.stdout, res.Digest)
			}
			return nil
		},
	}
	cmd.AddCommand(newExecutorImageCmd(g))
	return cmd
}
