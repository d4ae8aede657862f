package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
)

// stackSize is the number of functions of the stack suite.
const stackSize = 20

// stackRun is one cold build+push of the whole stack.
type stackRun struct {
	took                      time.Duration
	uploads, distinct, mounts int
	puts                      int
	// repeated are the blobs uploaded more than once, each with the
	// repositories it went to.
	repeated []string
}

// stackSuite builds a stack of 20 Go functions (go-main and go-hello
// copies, each answering its own greeting, so every binary differs) cold
// with --parallel 2 --push: each run a new kiln cache and new repositories
// in the one registry. One untimed run first warms the Go build cache.
func (b *bench) stackSuite(ctx context.Context, w io.Writer) error {
	dir := filepath.Join(b.work, "stack")
	for i := range stackSize {
		name := fmt.Sprintf("fn%02d", i)
		sample, file, old, new := "go-main", "main.go", "plain main says hi", name+" says hi"
		if i%2 == 1 {
			sample, file, old, new = "go-hello", "handler.go", `"Hello from kiln")`, `"Hello from `+name+`")`
		}
		dst := filepath.Join(dir, name)
		if err := copyDir(filepath.Join(b.cfg.samples, sample), dst); err != nil {
			return err
		}
		src, err := os.ReadFile(filepath.Join(dst, file))
		if err != nil {
			return err
		}
		if bytes.Count(src, []byte(old)) != 1 {
			return fmt.Errorf("%s/%s: %q is not there once", sample, file, old)
		}
		src = bytes.Replace(src, []byte(old), []byte(new), 1)
		if err := os.WriteFile(filepath.Join(dst, file), src, 0o644); err != nil {
			return err
		}
	}
	stackFile := func(prefix string) (string, error) {
		var sb strings.Builder
		sb.WriteString("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n")
		for i := range stackSize {
			name := fmt.Sprintf("fn%02d", i)
			lang := "go"
			if i%2 == 1 {
				lang = "golang-middleware"
			}
			fmt.Fprintf(&sb, "  %s:\n    lang: %s\n    handler: ./%s\n    image: %s/%s/%s:latest\n    build_args:\n      TEST_ENABLED: \"false\"\n", name, lang, name, b.reg.Host, prefix, name)
		}
		name := "stack-" + prefix + ".yml"
		return name, os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644)
	}
	once := func(prefix string) (stackRun, error) {
		file, err := stackFile(prefix)
		if err != nil {
			return stackRun{}, err
		}
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, b.cfg.kiln, "build", "-f", file, "--parallel", "2", "--push", "--cache-dir", b.newDir("cache-stack"))
		cmd.Dir = dir
		cmd.Env = b.env()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		mark := b.reg.Mark()
		start := time.Now()
		err = cmd.Run()
		took := time.Since(start)
		if err != nil {
			return stackRun{}, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
		}
		reqs, err := b.reg.Since(ctx, mark)
		if err != nil {
			return stackRun{}, err
		}
		ups := registrytest.BlobUploads(reqs)
		repos := map[string][]string{}
		for _, q := range reqs {
			if repo, d, ok := q.BlobUpload(); ok {
				repos[d] = append(repos[d], repo)
			}
		}
		var repeated []string
		for d, rs := range repos {
			if len(rs) > 1 {
				repeated = append(repeated, fmt.Sprintf("%s… to %s", d[:19], strings.Join(rs, " and ")))
			}
		}
		slices.Sort(repeated)
		return stackRun{took: took, uploads: len(ups), distinct: len(repos), mounts: len(registrytest.Mounts(reqs)), puts: len(registrytest.ManifestPuts(reqs)), repeated: repeated}, nil
	}
	if _, err := once("stack-warm"); err != nil {
		return err
	}
	var runs []stackRun
	for i := range b.cfg.runs {
		r, err := once(fmt.Sprintf("stack%d", i))
		if err != nil {
			return err
		}
		b.logf("stack of %d cold --parallel 2 --push: %.2fs, %d blobs uploaded (%d distinct), %d mounted, %d manifests", stackSize, r.took.Seconds(), r.uploads, r.distinct, r.mounts, r.puts)
		for _, x := range r.repeated {
			b.logf("  uploaded more than once: %s", x)
		}
		runs = append(runs, r)
	}
	printStack(w, runs)
	return nil
}

func printStack(w io.Writer, runs []stackRun) {
	times := make([]time.Duration, len(runs))
	var s []string
	for i, r := range runs {
		times[i] = r.took
		s = append(s, fmt.Sprintf("%.2f", r.took.Seconds()))
	}
	fmt.Fprintf(w, "\n### %d-function stack, cold, `kiln build --parallel 2 --push`, median of %d\n\n", stackSize, len(runs))
	fmt.Fprintln(w, "| wall time | blobs uploaded (distinct) | blobs uploaded more than once | blobs mounted | manifests put | runs (s) |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | --- |")
	last := runs[len(runs)-1]
	fmt.Fprintf(w, "| %.2f s | %d (%d) | %d | %d | %d | %s |\n", medianOf(times).Seconds(), last.uploads, last.distinct, len(last.repeated), last.mounts, last.puts, strings.Join(s, ", "))
	fmt.Fprintf(w, "\n%d copies of go-main (lang go) and go-hello (golang-middleware, TEST_ENABLED=false), each with its own greeting, each its own repository of one registry; per run a new kiln cache and new repositories, Go build cache warm; blob counts from the registry's access log for the last run (a blob another repository already holds is mounted, not uploaded).\n", stackSize)
}
