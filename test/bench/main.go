// Command bench measures kiln and prints Markdown tables, one per suite:
//
//   - ko: kiln against ko building and pushing the same plain Go program
//     (testdata/functions/go-main) to the same local distribution registry,
//     on the same base image (kiln's static base, pushed to that registry
//     and given to ko as KO_DEFAULTBASEIMAGE): median times of cold,
//     no-change and one-line-edit build+push, the kiln/ko ratios against
//     the targets, blobs uploaded per run (from the registry's access log)
//     and compressed image sizes. The Go build cache (GOCACHE) stays warm
//     for both tools: each tool builds once, untimed, before anything is
//     measured. "Cold" means empty tool caches (a new kiln --cache-dir, a
//     new KOCACHE) and a new repository.
//   - langs: the Node and Python samples: cold build+push, handler edit →
//     pushed, dependency change → pushed, and image sizes.
//   - dev: edit → ready under `kiln dev --local`, per language.
//   - stack: a 20-function Go stack built cold with --parallel 2 --push.
//   - java: the Java sample (java11, commons-lang3 from Debian's Maven
//     repository): cold build+push, Handler.java edit → pushed, and the
//     image size and kiln run → first 200 of the jlink runtime, jlink with a
//     CDS archive (JAVA_CDS=true) and Debian's full JRE (JAVA_RUNTIME=jre).
//   - dockerfile: kiln against BuildKit (buildkitd without a daemon
//     manager, buildctl, its dockerfile.v0 frontend) on the same Dockerfile
//     functions, base and registry: cold, unchanged and one-file-edit
//     build+push times, the time beyond the RUN commands' own, image sizes
//     and peak memory.
//   - nodemem: kiln executor's own peak memory, apart from npm's and
//     node's, building a Node function with ~490 MB of dependencies.
//   - cluster: nodemem, then the cluster benchmark (TestBench* in
//     test/cluster, on a real Kubernetes): a 10-function Go stack built by
//     kiln job cold and after a one-line edit, and node-heavy built in a
//     pod under a memory limit.
//
// Run it through make bench, which builds kiln and installs ko and
// BuildKit.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
)

func main() {
	var cfg config
	var only string
	flag.StringVar(&cfg.kiln, "kiln", "bin/kiln", "kiln executable")
	flag.StringVar(&cfg.ko, "ko", ".cache/tools/ko", "ko executable")
	flag.StringVar(&cfg.function, "function", "testdata/functions/go-main", "plain Go main package both tools build")
	flag.StringVar(&cfg.samples, "samples", "testdata/functions", "folder of the sample functions")
	flag.StringVar(&cfg.benchData, "bench-data", "test/bench/testdata", "folder of the benchmark's own Dockerfile functions")
	flag.StringVar(&cfg.buildkitd, "buildkitd", "", "BuildKit's buildkitd, the dockerfile suite's peer")
	flag.StringVar(&cfg.buildctl, "buildctl", "", "BuildKit's buildctl")
	flag.StringVar(&cfg.kubernetes, "kubernetes", "", "folder of the Kubernetes binaries the cluster suite runs (make kubernetes)")
	flag.IntVar(&cfg.runs, "runs", 5, "measured runs per case and tool")
	flag.StringVar(&only, "only", strings.Join(suiteNames, ","), "suites to run, comma-separated")
	flag.Parse()
	if cfg.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	for _, s := range strings.Split(only, ",") {
		if !slices.Contains(suiteNames, s) {
			fmt.Fprintf(os.Stderr, "bench: -only: no suite %q; there are %s\n", s, strings.Join(suiteNames, ", "))
			os.Exit(2)
		}
		cfg.suites = append(cfg.suites, s)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	kiln, ko, function, samples string
	benchData                   string
	buildkitd, buildctl         string
	kubernetes                  string
	runs                        int
	suites                      []string
}

// suiteNames are the suites, in the order they run.
var suiteNames = []string{"ko", "langs", "dev", "stack", "java", "dockerfile", "nodemem", "cluster"}

// commandTimeout bounds one build+push.
const commandTimeout = 5 * time.Minute

func run(ctx context.Context, cfg config, stdout, progress io.Writer) error {
	for _, p := range []*string{&cfg.kiln, &cfg.ko, &cfg.function, &cfg.samples, &cfg.benchData, &cfg.buildkitd, &cfg.buildctl, &cfg.kubernetes} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	work, err := os.MkdirTemp("", "kiln-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	reg, err := registrytest.Start(ctx, filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Close()
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "bench: "+format+"\n", args...) }
	logf("registry on %s", reg.Host)

	b := &bench{cfg: cfg, reg: reg, work: work, logf: logf}
	b.dockerConfig = filepath.Join(b.work, "docker-config")
	if err := os.MkdirAll(b.dockerConfig, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "## kiln benchmarks: %s, %s, %d CPUs, %d runs per case\n", time.Now().UTC().Format("2006-01-02"), runtime.Version(), runtime.NumCPU(), cfg.runs)
	// Each suite prints its table as soon as it is done, so a later
	// failure loses nothing measured.
	suites := map[string]func(context.Context, io.Writer) error{
		"ko":         b.koSuite,
		"langs":      b.langSuite,
		"dev":        b.devSuite,
		"stack":      b.stackSuite,
		"java":       b.javaSuite,
		"dockerfile": b.dockerfileSuite,
		"nodemem":    b.memSuite,
		"cluster":    b.clusterSuite,
	}
	for _, name := range cfg.suites {
		start := time.Now()
		if err := suites[name](ctx, stdout); err != nil {
			return fmt.Errorf("suite %s: %w", name, err)
		}
		logf("suite %s took %s", name, time.Since(start).Round(time.Second))
	}
	return nil
}

// koSuite is kiln against ko on go-main.
func (b *bench) koSuite(ctx context.Context, w io.Writer) error {
	if err := b.setup(ctx); err != nil {
		return err
	}
	res, err := b.measure(ctx)
	if err != nil {
		return err
	}
	res.print(w, b.cfg)
	return nil
}

// bench holds what every run shares.
type bench struct {
	cfg          config
	reg          *registrytest.Registry
	work         string
	src          string // the copy of the function both tools build and the edits change
	dockerConfig string // an empty DOCKER_CONFIG: no machine credentials
	baseRef      string // kiln's static base in the registry, ko's base
	tools        []*tool
	logf         func(string, ...any)
	seq          int
}

// tool is one of the two image builders.
type tool struct {
	name string
	// command returns the build+push of b.src to repo, with cache as the
	// tool's own cache directory.
	command func(ctx context.Context, repo, cache string) *exec.Cmd
	// steadyCache is the warm cache of the no-change and edit cases.
	steadyCache string
}

func (b *bench) setup(ctx context.Context) error {
	b.src = filepath.Join(b.work, "src", filepath.Base(b.cfg.function))
	if err := copyDir(b.cfg.function, b.src); err != nil {
		return err
	}
	base, err := b.pushBase(ctx)
	if err != nil {
		return fmt.Errorf("pushing kiln's static base: %w", err)
	}
	b.baseRef = base
	b.logf("base image %s", base)

	b.tools = []*tool{
		{name: "kiln", command: func(ctx context.Context, repo, cache string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, b.cfg.kiln, "build", b.src, "--lang", "go",
				"--image", b.reg.Host+"/"+repo+":latest", "--push", "--cache-dir", cache)
			cmd.Env = b.env()
			return cmd
		}},
		{name: "ko", command: func(ctx context.Context, repo, cache string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, b.cfg.ko, "build", "--bare", "--platform", "linux/amd64", "--sbom", "none", ".")
			cmd.Dir = b.src
			cmd.Env = append(b.env(),
				"KO_DOCKER_REPO="+b.reg.Host+"/"+repo,
				"KO_DEFAULTBASEIMAGE="+b.baseRef,
				"KOCACHE="+cache,
			)
			return cmd
		}},
	}
	// Warm the Go build cache for both tools; untimed.
	for _, t := range b.tools {
		if _, err := b.once(ctx, t, "warmup-"+t.name, b.newDir("cache-warmup-"+t.name)); err != nil {
			return err
		}
		t.steadyCache = b.newDir("cache-steady-" + t.name)
	}
	return nil
}

// env is the environment of both tools: the caller's, minus what would
// change their behaviour behind the benchmark's back.
func (b *bench) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "KILN_") || strings.HasPrefix(k, "KO_") || k == "KOCACHE" || k == "SOURCE_DATE_EPOCH" || k == "DOCKER_CONFIG" || k == "XDG_CONFIG_HOME" || k == "OPENFAAS_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	// kiln dev --local saves its gateway's login there, not in the
	// machine's ~/.config/kiln and ~/.openfaas.
	return append(env, "DOCKER_CONFIG="+b.dockerConfig, "XDG_CONFIG_HOME="+filepath.Join(b.work, "config"), "OPENFAAS_CONFIG="+filepath.Join(b.work, "openfaas"))
}

func (b *bench) newDir(prefix string) string {
	b.seq++
	return filepath.Join(b.work, fmt.Sprintf("%s-%d", prefix, b.seq))
}

// runResult is one measured build+push.
type runResult struct {
	took    time.Duration
	uploads int // blobs uploaded
	mounts  int // blobs mounted from another repository
	puts    int // manifests put
	image   string
}

// once runs one build+push of tool t to repo and reads what it sent from
// the registry's access log.
func (b *bench) once(ctx context.Context, t *tool, repo, cache string) (runResult, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := t.command(ctx, repo, cache)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	mark := b.reg.Mark()
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return runResult{}, fmt.Errorf("%s: %w\n%s%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	reqs, err := b.reg.Since(ctx, mark)
	if err != nil {
		return runResult{}, err
	}
	lines := strings.Fields(stdout.String())
	r := runResult{
		took:    took,
		uploads: len(registrytest.BlobUploads(reqs)),
		mounts:  len(registrytest.Mounts(reqs)),
		puts:    len(registrytest.ManifestPuts(reqs)),
	}
	if len(lines) > 0 {
		r.image = lines[len(lines)-1]
	}
	return r, nil
}

// Case names.
const (
	caseCold     = "cold build+push"
	caseNoChange = "no-change rebuild+push"
	caseEdit     = "one-line edit, rebuild+push"
)

// results are the measured runs per case and tool.
type results struct {
	runs  map[string]map[string][]runResult // case, tool
	sizes map[string]*registrytest.Manifest // tool: the steady image
	// layerNames are the steady image's layer names, from its history.
	layerNames map[string][]string
	base       string
	tools      []string
}

func (b *bench) measure(ctx context.Context) (*results, error) {
	res := &results{
		runs:       map[string]map[string][]runResult{},
		sizes:      map[string]*registrytest.Manifest{},
		layerNames: map[string][]string{},
		base:       b.baseRef,
	}
	for _, t := range b.tools {
		res.tools = append(res.tools, t.name)
	}
	record := func(c string, t *tool, r runResult) {
		if res.runs[c] == nil {
			res.runs[c] = map[string][]runResult{}
		}
		res.runs[c][t.name] = append(res.runs[c][t.name], r)
		b.logf("%-28s %-4s %7.3fs  %d blobs uploaded, %d mounted, %d manifests", c, t.name, r.took.Seconds(), r.uploads, r.mounts, r.puts)
	}
	// order alternates which tool goes first, so neither always runs on
	// the other's freshly warmed page cache.
	order := func(i int) []*tool {
		if i%2 == 0 {
			return b.tools
		}
		return []*tool{b.tools[1], b.tools[0]}
	}

	for i := range b.cfg.runs {
		for _, t := range order(i) {
			r, err := b.once(ctx, t, fmt.Sprintf("%s-main-cold-%d", t.name, i), b.newDir("cache-cold-"+t.name))
			if err != nil {
				return nil, err
			}
			record(caseCold, t, r)
		}
	}

	// Prime the steady caches and repositories, untimed, then rebuild
	// without changes.
	for _, t := range b.tools {
		if _, err := b.once(ctx, t, t.name+"-main", t.steadyCache); err != nil {
			return nil, err
		}
	}
	for i := range b.cfg.runs {
		for _, t := range order(i) {
			r, err := b.once(ctx, t, t.name+"-main", t.steadyCache)
			if err != nil {
				return nil, err
			}
			record(caseNoChange, t, r)
		}
	}
	for _, t := range b.tools {
		m, err := b.reg.Manifest(ctx, t.name+"-main", "latest")
		if err != nil {
			return nil, err
		}
		res.sizes[t.name] = m
		if res.layerNames[t.name], err = b.layerNames(ctx, t.name+"-main", m); err != nil {
			return nil, err
		}
	}
	m, err := b.koWatchdogImage(ctx, b.tools[1])
	if err != nil {
		return nil, err
	}
	res.sizes[koWatchdog] = m

	for i := range b.cfg.runs {
		if err := b.edit(i); err != nil {
			return nil, err
		}
		for _, t := range order(i) {
			r, err := b.once(ctx, t, t.name+"-main", t.steadyCache)
			if err != nil {
				return nil, err
			}
			record(caseEdit, t, r)
		}
	}
	return res, nil
}

// layerNames names the layers of m from its config's history: the
// created_by of each entry that made a layer.
func (b *bench) layerNames(ctx context.Context, repo string, m *registrytest.Manifest) ([]string, error) {
	raw, err := b.reg.Blob(ctx, repo, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	var cf struct {
		History []struct {
			CreatedBy  string `json:"created_by"`
			Comment    string `json:"comment"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("decoding the config of %s: %w", repo, err)
	}
	var names []string
	for _, h := range cf.History {
		if h.EmptyLayer {
			continue
		}
		n := h.CreatedBy
		if n == "" {
			n = h.Comment
		}
		names = append(names, strings.TrimPrefix(n, "kiln: "))
	}
	if len(names) != len(m.Layers) {
		// No usable history: number the layers.
		names = names[:0]
		for i := range m.Layers {
			names = append(names, fmt.Sprintf("layer %d", i+1))
		}
	}
	return names, nil
}

// editLine is the line of go-main's main.go the edit case changes.
const editLine = `fmt.Fprintf(w, "plain main says hi on %s\n", r.URL.Path)`

// edit changes one line of the function, differently for every run.
func (b *bench) edit(run int) error {
	path := filepath.Join(b.src, "main.go")
	src, err := os.ReadFile(filepath.Join(b.cfg.function, "main.go"))
	if err != nil {
		return err
	}
	if bytes.Count(src, []byte(editLine)) != 1 {
		return fmt.Errorf("%s: the line to edit, %s, is not there once", path, editLine)
	}
	edited := strings.Replace(editLine, "says hi", fmt.Sprintf("says hi (edit %d)", run+1), 1)
	return os.WriteFile(path, bytes.Replace(src, []byte(editLine), []byte(edited), 1), 0o644)
}

// pushBase builds kiln's static base for linux/amd64 and pushes it to the
// registry as base/static, returning its reference by digest.
func (b *bench) pushBase(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	ref := b.reg.Host + "/base/static:latest"
	cmd := exec.CommandContext(ctx, b.cfg.kiln, "base", "build", "static",
		"--platform", "linux/amd64", "--image", ref, "--output", "registry",
		"--cache-dir", b.newDir("cache-base"))
	cmd.Env = b.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	status, digest, err := b.reg.ManifestDigest(ctx, "base/static", "latest")
	if err != nil {
		return "", err
	}
	if status != 200 {
		return "", fmt.Errorf("%s printed %q but the registry answers %d for base/static:latest", strings.Join(cmd.Args, " "), stdout.String(), status)
	}
	return b.reg.Host + "/base/static@" + digest, nil
}

// targets are the kiln/ko ratios to report against, per case.
var targets = map[string]float64{
	caseNoChange: 0.5,
	caseEdit:     0.7,
}

func (r *results) print(w io.Writer, cfg config) {
	fmt.Fprintf(w, "\n### kiln vs ko: %s, %d runs per case (medians), %s, %d CPUs\n\n", filepath.Base(cfg.function), cfg.runs, runtime.Version(), runtime.NumCPU())
	fmt.Fprintln(w, "| case | kiln | ko | kiln/ko | target | met | blobs uploaded per run (kiln / ko) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | :---: | --- |")
	for _, c := range []string{caseCold, caseNoChange, caseEdit} {
		k, o := median(r.runs[c]["kiln"]), median(r.runs[c]["ko"])
		ratio := k.Seconds() / o.Seconds()
		target, met := "–", "–"
		if tg, ok := targets[c]; ok {
			target = fmt.Sprintf("≤ %.1f", tg)
			met = yesNo(ratio <= tg)
		}
		fmt.Fprintf(w, "| %s | %.2f s | %.2f s | %.2f | %s | %s | %s / %s |\n", c, k.Seconds(), o.Seconds(), ratio, target, met, blobs(r.runs[c]["kiln"]), blobs(r.runs[c]["ko"]))
	}
	ks, kos := r.sizes["kiln"], r.sizes["ko"]
	ratio := float64(ks.CompressedSize()) / float64(kos.CompressedSize())
	fmt.Fprintf(w, "| image size, compressed (config + layers) | %s | %s | %.2f | ≤ 1.0 | %s | %d layers / %d layers |\n",
		humanSize(ks.CompressedSize()), humanSize(kos.CompressedSize()), ratio, yesNo(ratio <= 1), len(ks.Layers), len(kos.Layers))
	if kw := r.sizes[koWatchdog]; kw != nil {
		ratio := float64(ks.CompressedSize()) / float64(kw.CompressedSize())
		fmt.Fprintf(w, "| image size, compressed, ko's base with kiln's watchdog added | %s | %s | %.2f | ≤ 1.0 | %s | %d layers / %d layers |\n",
			humanSize(ks.CompressedSize()), humanSize(kw.CompressedSize()), ratio, yesNo(ratio <= 1), len(ks.Layers), len(kw.Layers))
	}

	for _, t := range r.tools {
		m := r.sizes[t]
		var parts []string
		for i, l := range m.Layers {
			parts = append(parts, fmt.Sprintf("%s %s", r.layerNames[t][i], humanSize(l.Size)))
		}
		fmt.Fprintf(w, "\n- %s image layers (compressed): %s; config %s.", t, strings.Join(parts, ", "), humanSize(m.Config.Size))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\nGo build cache warm for both tools. Cold = a new kiln --cache-dir / a new KOCACHE and a new repository per run; ")
	fmt.Fprintf(w, "kiln's cold run also fetches the base's Debian packages from its mirror, while ko pulls the same base from the local registry. ")
	fmt.Fprintf(w, "ko's base is kiln's static base, %s; ko runs with its defaults (no -s -w). ", r.base)
	fmt.Fprintf(w, "A ko image has no watchdog, which an OpenFaaS function needs and every kiln image carries (its layer is shared by all of them): ")
	fmt.Fprintf(w, "the second size row gives ko that base with kiln's watchdog layer added. Runs in seconds:\n\n")
	for _, c := range []string{caseCold, caseNoChange, caseEdit} {
		for _, t := range r.tools {
			var s []string
			for _, run := range r.runs[c][t] {
				s = append(s, fmt.Sprintf("%.2f", run.took.Seconds()))
			}
			fmt.Fprintf(w, "- %s, %s: %s\n", c, t, strings.Join(s, ", "))
		}
	}
}

func median(runs []runResult) time.Duration {
	d := make([]time.Duration, len(runs))
	for i, r := range runs {
		d[i] = r.took
	}
	slices.Sort(d)
	if len(d) == 0 {
		return 0
	}
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// blobs renders the uploads of runs: "2", or "2–3" when they differ, with
// mounts when there were any.
func blobs(runs []runResult) string {
	if len(runs) == 0 {
		return "–"
	}
	lo, hi, mounts := runs[0].uploads, runs[0].uploads, 0
	for _, r := range runs {
		lo, hi = min(lo, r.uploads), max(hi, r.uploads)
		mounts = max(mounts, r.mounts)
	}
	s := fmt.Sprint(lo)
	if hi != lo {
		s = fmt.Sprintf("%d–%d", lo, hi)
	}
	if mounts > 0 {
		s += fmt.Sprintf(" (+%d mounted)", mounts)
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// copyDir copies the regular files and folders of src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular():
			return errors.New(p + ": not a regular file")
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
