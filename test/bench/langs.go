package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

// langCase is one language of the langs suite: a sample, how a handler
// edit and a dependency change are made to its copy.
type langCase struct {
	title, sample, lang string
	env                 []string
	// handler is the file the edit changes, old the string it replaces
	// and edit the replacement, with %d for the run.
	handler, old, edit string
	// setDeps writes the dependency change of run i into src.
	setDeps func(src string, i int) error
	// depFile names what setDeps changes, for the table.
	depFile string
	// budget is the bound on the uncompressed image, and how the
	// issue writes it.
	budget     int64
	budgetText string
	src        string
}

// langResult is what the langs suite measured for one language.
type langResult struct {
	c                        *langCase
	cold, edit, deps         []runResult
	compressed, uncompressed int64
	layers                   int
}

// Case names of the langs suite.
const (
	caseHandlerEdit = "handler edit → pushed"
	caseDepChange   = "dependency change → pushed"
)

// editTarget is the bound on a handler edit → pushed.
const editTarget = 500 * time.Millisecond

func (b *bench) langSuite(ctx context.Context, w io.Writer) error {
	node, err := b.nodeCase(ctx)
	if err != nil {
		return err
	}
	python, err := b.pythonCase()
	if err != nil {
		return err
	}
	var results []*langResult
	for _, c := range []*langCase{node, python} {
		r, err := b.measureLang(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c.title, err)
		}
		results = append(results, r)
	}
	printLangs(w, results, b.cfg.runs)
	return nil
}

// nodeCase prepares node-hello. Its dependency changes pin ms to an older
// version each run; npm writes those lockfiles here, untimed.
func (b *bench) nodeCase(ctx context.Context) (*langCase, error) {
	c := &langCase{title: "Node (node20)", sample: "node-hello", lang: "node20", handler: "handler.js", old: "Hello from kiln", edit: "Hello from kiln (edit %d)", depFile: "package-lock.json", budget: 130e6, budgetText: "130 MB"}
	versions := []string{"2.1.2", "2.1.1", "2.1.0", "2.0.0", "1.0.0", "0.7.3", "0.7.2", "0.7.1", "0.7.0"}
	if b.cfg.runs > len(versions) {
		return nil, fmt.Errorf("node: %d dependency versions for %d runs", len(versions), b.cfg.runs)
	}
	scratch := filepath.Join(b.work, "npm-lockfiles")
	if err := copyDir(filepath.Join(b.cfg.samples, c.sample), scratch); err != nil {
		return nil, err
	}
	type lock struct{ pkg, lock []byte }
	var locks []lock
	for _, v := range versions[:b.cfg.runs] {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd := exec.CommandContext(ctx, "npm", "install", "ms@"+v, "--save-exact", "--package-lock-only", "--no-audit", "--no-fund")
		cmd.Dir = scratch
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("npm install ms@%s: %w\n%s", v, err, out)
		}
		var l lock
		if l.pkg, err = os.ReadFile(filepath.Join(scratch, "package.json")); err != nil {
			return nil, err
		}
		if l.lock, err = os.ReadFile(filepath.Join(scratch, "package-lock.json")); err != nil {
			return nil, err
		}
		locks = append(locks, l)
	}
	c.setDeps = func(src string, i int) error {
		if err := os.WriteFile(filepath.Join(src, "package.json"), locks[i].pkg, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(src, "package-lock.json"), locks[i].lock, 0o644)
	}
	return c, nil
}

// pythonCase prepares python-http with a wheelhouse of kiln-greeting
// 1.0 to 1.N, since no package index is reachable: run i pins 1.(i+1).
func (b *bench) pythonCase() (*langCase, error) {
	wheels := filepath.Join(b.work, "wheelhouse")
	if err := os.MkdirAll(wheels, 0o755); err != nil {
		return nil, err
	}
	if err := serverWheels(wheels); err != nil {
		return nil, err
	}
	for i := 0; i <= b.cfg.runs; i++ {
		v := fmt.Sprintf("1.%d", i)
		if _, err := wheelhouse.Write(wheels, "kiln_greeting", v, map[string]string{
			"kiln_greeting/__init__.py": fmt.Sprintf("VERSION = %q\n\n\ndef greet(name):\n    return \"Hello from \" + name\n", v),
		}); err != nil {
			return nil, err
		}
	}
	return &langCase{
		title: "Python (python3-http)", sample: "python-http", lang: "python3-http",
		env:     wheelhouse.Env(wheels),
		handler: "handler.py", old: `event.query.get("name", "kiln")`, edit: `event.query.get("name", "kiln (edit %d)")`, depFile: "requirements.txt", budget: 50 << 20, budgetText: "50 MiB",
		setDeps: func(src string, i int) error {
			return os.WriteFile(filepath.Join(src, "requirements.txt"), fmt.Appendf(nil, "kiln-greeting==1.%d\n", i+1), 0o644)
		},
	}, nil
}

// measureLang times cold builds (a new cache and repository each run),
// then, on one primed cache and repository, handler edits and dependency
// changes, each run a different one.
func (b *bench) measureLang(ctx context.Context, c *langCase) (*langResult, error) {
	c.src = filepath.Join(b.work, "src-"+c.sample)
	if err := copyDir(filepath.Join(b.cfg.samples, c.sample), c.src); err != nil {
		return nil, err
	}
	t := &tool{name: c.sample, command: func(ctx context.Context, repo, cache string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, b.cfg.kiln, "build", c.src, "--lang", c.lang,
			"--image", b.reg.Host+"/"+repo+":latest", "--push", "--cache-dir", cache)
		cmd.Env = append(b.env(), c.env...)
		return cmd
	}}
	res := &langResult{c: c}
	logRun := func(name string, r runResult) {
		b.logf("%-10s %-28s %7.3fs  %d blobs uploaded, %d mounted", c.sample, name, r.took.Seconds(), r.uploads, r.mounts)
	}
	for i := range b.cfg.runs {
		r, err := b.once(ctx, t, fmt.Sprintf("%s-cold-%d", c.sample, i), b.newDir("cache-cold-"+c.sample))
		if err != nil {
			return nil, err
		}
		logRun(caseCold, r)
		res.cold = append(res.cold, r)
	}
	repo, cache := c.sample, b.newDir("cache-steady-"+c.sample)
	if _, err := b.once(ctx, t, repo, cache); err != nil {
		return nil, err
	}
	m, err := b.reg.Manifest(ctx, repo, "latest")
	if err != nil {
		return nil, err
	}
	res.layers = len(m.Layers)
	if res.compressed, res.uncompressed, err = b.imageSizes(ctx, repo, m); err != nil {
		return nil, err
	}
	orig, err := os.ReadFile(filepath.Join(c.src, c.handler))
	if err != nil {
		return nil, err
	}
	if bytes.Count(orig, []byte(c.old)) != 1 {
		return nil, fmt.Errorf("%s: %q is not there once", c.handler, c.old)
	}
	for i := range b.cfg.runs {
		edited := bytes.Replace(orig, []byte(c.old), fmt.Appendf(nil, c.edit, i+1), 1)
		if err := os.WriteFile(filepath.Join(c.src, c.handler), edited, 0o644); err != nil {
			return nil, err
		}
		r, err := b.once(ctx, t, repo, cache)
		if err != nil {
			return nil, err
		}
		logRun(caseHandlerEdit, r)
		res.edit = append(res.edit, r)
	}
	for i := range b.cfg.runs {
		if err := c.setDeps(c.src, i); err != nil {
			return nil, err
		}
		r, err := b.once(ctx, t, repo, cache)
		if err != nil {
			return nil, err
		}
		logRun(caseDepChange, r)
		res.deps = append(res.deps, r)
	}
	return res, nil
}

// imageSizes sums m's layers as pushed (gzip) and as unpacked (the
// layers' tar streams).
func (b *bench) imageSizes(ctx context.Context, repo string, m *registrytest.Manifest) (compressed, uncompressed int64, err error) {
	for _, l := range m.Layers {
		compressed += l.Size
		blob, err := b.reg.Blob(ctx, repo, l.Digest)
		if err != nil {
			return 0, 0, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			return 0, 0, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			return 0, 0, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		uncompressed += n
	}
	return compressed, uncompressed, nil
}

func printLangs(w io.Writer, results []*langResult, runs int) {
	fmt.Fprintf(w, "\n### Node and Python functions: build+push to the local registry, medians of %d\n\n", runs)
	fmt.Fprintln(w, "| function | cold build+push | handler edit → pushed | ≤ 0.5 s | dependency change → pushed | blobs uploaded per run (cold / edit / dependency) | image compressed | image uncompressed | budget |")
	fmt.Fprintln(w, "| --- | ---: | ---: | :---: | ---: | --- | ---: | ---: | :---: |")
	for _, r := range results {
		edit := median(r.edit)
		fmt.Fprintf(w, "| %s | %.2f s | %.2f s | %s | %.2f s (%s) | %s / %s / %s | %s | %s | %s (≤ %s) |\n",
			r.c.title, median(r.cold).Seconds(), edit.Seconds(), yesNo(edit <= editTarget), median(r.deps).Seconds(), r.c.depFile,
			blobs(r.cold), blobs(r.edit), blobs(r.deps),
			humanSize(r.compressed), humanSize(r.uncompressed), yesNo(r.uncompressed <= r.c.budget), r.c.budgetText)
	}
	fmt.Fprintf(w, "\nCold = a new kiln --cache-dir and repository per run (npm's and pip's own caches stay warm); edits and dependency changes rebuild on one primed cache, each run a different change; image sizes are the layers' (no config), %d layers each. Runs in seconds:\n\n", results[0].layers)
	for _, r := range results {
		for _, c := range []struct {
			name string
			runs []runResult
		}{{caseCold, r.cold}, {caseHandlerEdit, r.edit}, {caseDepChange, r.deps}} {
			var s []string
			for _, run := range c.runs {
				s = append(s, fmt.Sprintf("%.2f", run.took.Seconds()))
			}
			fmt.Fprintf(w, "- %s, %s: %s\n", r.c.title, c.name, strings.Join(s, ", "))
		}
	}
}

// serverWheels puts into the wheelhouse the Flask and waitress wheels the
// Python pack pins for python3-http's server, as the e2e suite does: the
// benchmark's pip reads no package index.
func serverWheels(wheels string) error {
	pins, err := os.ReadFile(filepath.Join("languages", "python", "shim", "server-requirements.txt"))
	if err != nil {
		return fmt.Errorf("the Python server's pins: %w", err)
	}
	return wheelhouse.Pinned(wheels, pins)
}
