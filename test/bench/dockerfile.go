package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/test/registrytest"
)

// dfFunction is one Dockerfile function both kiln and BuildKit build.
type dfFunction struct {
	title, dir string
	// editFile is the file the edit case changes (copied before a RUN),
	// old the string replaced and edit its replacement, with %d for the run.
	editFile, old, edit string
	// sleeps are the RUNs sleeping runSleep that must run, per case.
	sleeps map[string]int
	secret bool // the Dockerfile mounts the secret "token"
}

// runSleep is how long the sleeping RUN of dockerfile-sleep takes.
const runSleep = 2 * time.Second

// watchdogRef is the image the dockerfile-hello sample copies the
// watchdog from: kiln stands its own watchdog in for it, and BuildKit gets
// the same image from the local registry through a named context.
const watchdogRef = "ghcr.io/openfaas/classic-watchdog:0.3.3"

// Case names of the Dockerfile suite.
const (
	dfCold      = "cold"
	dfUnchanged = "unchanged rebuild"
	dfEdit      = "one-file edit"
)

var dfCases = []string{dfCold, dfUnchanged, dfEdit}

// dfRun is one measured build+push.
type dfRun struct {
	took time.Duration // the build: kiln's process, buildctl's
	// total is BuildKit's buildkitd start + build + stop; zero for kiln.
	total time.Duration
	// maxRSS is the tool's own peak: kiln's rusage (which holds the
	// largest of the children it waited for), buildkitd's VmHWM.
	maxRSS int64
	// treeRSS is the largest sum of the RSS of the tool's process tree,
	// sampled.
	treeRSS int64
	// steps are kiln's progress lines, one a step with its time: where a
	// case that misses the target spends it.
	steps []string
}

// dfBuilder is kiln or BuildKit.
type dfBuilder struct {
	name string
	// build builds f from src and pushes it to repo, with cache as the
	// tool's cache directory (kiln's --cache-dir, buildkitd's --root).
	build func(ctx context.Context, f *dfFunction, src, repo, cache string) (dfRun, error)
}

// dockerfileSuite builds three Dockerfile functions with kiln and with
// BuildKit (daemonless buildkitd, buildctl, its dockerfile.v0 frontend)
// on the same registry and base: cold, unchanged rebuild and the edit of
// one file copied before a RUN.
func (b *bench) dockerfileSuite(ctx context.Context, w io.Writer) error {
	if b.cfg.buildkitd == "" || b.cfg.buildctl == "" {
		return errors.New("-buildkitd and -buildctl are needed (bench.sh builds them)")
	}
	if err := b.pushDebian(ctx); err != nil {
		return fmt.Errorf("pushing kiln's debian base: %w", err)
	}
	if err := b.pushWatchdogImage(ctx); err != nil {
		return fmt.Errorf("pushing the watchdog image for BuildKit: %w", err)
	}
	token := filepath.Join(b.work, "df-token.txt")
	if err := os.WriteFile(token, []byte("kiln-bench-secret"), 0o600); err != nil {
		return err
	}
	funcs := []*dfFunction{
		{title: "dockerfile-hello", dir: filepath.Join(b.cfg.samples, "dockerfile-hello"), secret: true,
			editFile: "greeting.sh", old: "from a Dockerfile", edit: "from a Dockerfile (edit %d)"},
		{title: "dockerfile-sleep", dir: filepath.Join(b.cfg.benchData, "dockerfile-sleep"),
			editFile: "data.txt", old: "the data", edit: "the data (edit %d)",
			sleeps: map[string]int{dfCold: 1, dfEdit: 1}},
		{title: "dockerfile-stages", dir: filepath.Join(b.cfg.benchData, "dockerfile-stages"),
			editFile: "a.txt", old: "stage a's input", edit: "stage a's input (edit %d)"},
	}
	builders := []*dfBuilder{
		{name: "kiln", build: func(ctx context.Context, f *dfFunction, src, repo, cache string) (dfRun, error) {
			return b.kilnDockerfile(ctx, f, src, repo, cache, token)
		}},
		{name: "BuildKit", build: func(ctx context.Context, f *dfFunction, src, repo, cache string) (dfRun, error) {
			return b.buildkitDockerfile(ctx, f, src, repo, cache, token)
		}},
	}
	order := func(i int) []*dfBuilder {
		if i%2 == 0 {
			return builders
		}
		return []*dfBuilder{builders[1], builders[0]}
	}
	res := &dfResults{runs: map[string]map[string]map[string][]dfRun{}, sizes: map[string]map[string]*registrytest.Manifest{}}
	for _, f := range funcs {
		res.funcs = append(res.funcs, f)
		res.runs[f.title] = map[string]map[string][]dfRun{}
		res.sizes[f.title] = map[string]*registrytest.Manifest{}
		src := filepath.Join(b.work, "df-src", f.title)
		if err := copyDir(f.dir, src); err != nil {
			return err
		}
		record := func(c string, t *dfBuilder, r dfRun) {
			if res.runs[f.title][c] == nil {
				res.runs[f.title][c] = map[string][]dfRun{}
			}
			res.runs[f.title][c][t.name] = append(res.runs[f.title][c][t.name], r)
			b.logf("%-18s %-18s %-8s %6.3fs  peak RSS %s (tree %s)", f.title, c, t.name, r.took.Seconds(), humanSize(r.maxRSS), humanSize(r.treeRSS))
		}
		for i := range b.cfg.runs {
			for _, t := range order(i) {
				r, err := t.build(ctx, f, src, fmt.Sprintf("df-%s-%s-cold-%d", strings.ToLower(t.name), f.title, i), b.newDir("df-cache-cold"))
				if err != nil {
					return err
				}
				record(dfCold, t, r)
			}
		}
		steadyRepo := func(t *dfBuilder) string { return fmt.Sprintf("df-%s-%s", strings.ToLower(t.name), f.title) }
		steady := map[string]string{}
		for _, t := range builders {
			steady[t.name] = b.newDir("df-cache-steady")
			if _, err := t.build(ctx, f, src, steadyRepo(t), steady[t.name]); err != nil {
				return err
			}
		}
		for i := range b.cfg.runs {
			for _, t := range order(i) {
				r, err := t.build(ctx, f, src, steadyRepo(t), steady[t.name])
				if err != nil {
					return err
				}
				record(dfUnchanged, t, r)
			}
		}
		for _, t := range builders {
			m, err := b.reg.Manifest(ctx, steadyRepo(t), "latest")
			if err != nil {
				return err
			}
			res.sizes[f.title][t.name] = m
		}
		for i := range b.cfg.runs {
			if err := editFile(f, src, i); err != nil {
				return err
			}
			for _, t := range order(i) {
				r, err := t.build(ctx, f, src, steadyRepo(t), steady[t.name])
				if err != nil {
					return err
				}
				record(dfEdit, t, r)
			}
		}
	}
	res.print(w, b.cfg.runs)
	return nil
}

// editFile changes f's edit file in src, differently for every run.
func editFile(f *dfFunction, src string, run int) error {
	orig, err := os.ReadFile(filepath.Join(f.dir, f.editFile))
	if err != nil {
		return err
	}
	if bytes.Count(orig, []byte(f.old)) != 1 {
		return fmt.Errorf("%s/%s: %q is not there once", f.title, f.editFile, f.old)
	}
	edited := bytes.Replace(orig, []byte(f.old), []byte(fmt.Sprintf(f.edit, run+1)), 1)
	return os.WriteFile(filepath.Join(src, f.editFile), edited, 0o644)
}

// kilnDockerfile builds f as the one function of a stack (kiln build DIR
// has no flag for a secret), with the registry as a build arg.
func (b *bench) kilnDockerfile(ctx context.Context, f *dfFunction, src, repo, cache, token string) (dfRun, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  fn:\n    lang: dockerfile\n    handler: %s\n    image: %s/%s:latest\n    build_args:\n      REGISTRY: %s\n", src, b.reg.Host, repo, b.reg.Host)
	if f.secret {
		fmt.Fprintf(&sb, "    build_secrets:\n      token: %s\n", token)
	}
	stack := filepath.Join(b.work, "df-stack-"+repo+".yml")
	if err := os.WriteFile(stack, []byte(sb.String()), 0o644); err != nil {
		return dfRun{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.cfg.kiln, "build", "-f", stack, "--push", "--cache-dir", cache, "--progress", "plain")
	cmd.Env = b.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return dfRun{}, err
	}
	tree := sampleTree(cmd.Process.Pid)
	err := cmd.Wait()
	took := time.Since(start)
	treeRSS := tree()
	if err != nil {
		return dfRun{}, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	var maxRSS int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = ru.Maxrss << 10
	}
	var steps []string
	for _, line := range strings.Split(out.String(), "\n") {
		if step, ok := strings.CutPrefix(line, "fn: "); ok {
			// A long RUN keeps its start and its size and time.
			if len(step) > 100 {
				step = step[:50] + " … " + step[len(step)-30:]
			}
			steps = append(steps, step)
		}
	}
	return dfRun{took: took, maxRSS: maxRSS, treeRSS: treeRSS, steps: steps}, nil
}

// buildkitDockerfile starts buildkitd on root, builds f with buildctl and
// stops buildkitd: the build alone is what is compared, the daemon's start
// and stop are reported beside it.
func (b *bench) buildkitDockerfile(ctx context.Context, f *dfFunction, src, repo, root, token string) (dfRun, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if err := os.MkdirAll(root, 0o700); err != nil {
		return dfRun{}, err
	}
	conf := filepath.Join(root, "buildkitd.toml")
	toml := fmt.Sprintf("[worker.oci]\n  binary = \"runc\"\n[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n  insecure = true\n", b.reg.Host)
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		return dfRun{}, err
	}
	addr := "unix://" + filepath.Join(root, "buildkitd.sock")
	start := time.Now()
	daemon := exec.Command(b.cfg.buildkitd, "--config", conf, "--root", root, "--addr", addr,
		"--otel-socket-path", filepath.Join(root, "otel.sock"), "--oci-worker=true", "--containerd-worker=false")
	var dlog bytes.Buffer
	daemon.Stdout, daemon.Stderr = &dlog, &dlog
	if err := daemon.Start(); err != nil {
		return dfRun{}, err
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = daemon.Process.Signal(syscall.SIGTERM)
		// Exit code 1 after SIGTERM is buildkitd's normal stop.
		_ = daemon.Wait()
	}
	defer stop()
	tree := sampleTree(daemon.Process.Pid)
	if err := b.waitBuildkitd(ctx, addr); err != nil {
		return dfRun{}, fmt.Errorf("%w\n%s", err, dlog.String())
	}
	args := []string{"--addr", addr, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + src, "--local", "dockerfile=" + src,
		"--opt", "build-arg:REGISTRY=" + b.reg.Host,
		"--opt", "context:" + watchdogRef + "=docker-image://" + b.reg.Host + "/openfaas/classic-watchdog:0.3.3",
		"--output", "type=image,name=" + b.reg.Host + "/" + repo + ":latest,push=true,registry.insecure=true",
		"--progress", "plain"}
	if f.secret {
		args = append(args, "--secret", "id=token,src="+token)
	}
	cmd := exec.CommandContext(ctx, b.cfg.buildctl, args...)
	cmd.Env = b.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	bstart := time.Now()
	err := cmd.Run()
	took := time.Since(bstart)
	if err != nil {
		return dfRun{}, fmt.Errorf("%s: %w\n%s\nbuildkitd:\n%s", strings.Join(cmd.Args, " "), err, out.String(), dlog.String())
	}
	hwm, err := vmHWM(daemon.Process.Pid)
	if err != nil {
		return dfRun{}, err
	}
	treeRSS := tree()
	stop()
	return dfRun{took: took, total: time.Since(start), maxRSS: hwm, treeRSS: treeRSS}, nil
}

// waitBuildkitd waits until buildkitd at addr answers with its workers.
func (b *bench) waitBuildkitd(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := exec.CommandContext(ctx, b.cfg.buildctl, "--addr", addr, "debug", "workers").Run()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("buildkitd at %s not ready after 30 s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushDebian builds kiln's debian base and pushes it as debian:bookworm,
// the base of the suite's Dockerfiles.
func (b *bench) pushDebian(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.cfg.kiln, "base", "build", "debian",
		"--image", b.reg.Host+"/debian:bookworm", "--output", "registry", "--cache-dir", b.newDir("df-cache-base"))
	cmd.Env = b.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return nil
}

// pushWatchdogImage pushes what kiln builds for OpenFaaS's watchdog
// images, an image of kiln's watchdog alone at /fwatchdog, as
// openfaas/classic-watchdog:0.3.3, so that BuildKit copies the same bytes.
func (b *bench) pushWatchdogImage(ctx context.Context) error {
	var tar bytes.Buffer
	wd := filepath.Join(filepath.Dir(b.cfg.kiln), "kiln-watchdog-linux-amd64")
	if err := layers.WriteTar(&tar, []layers.File{layers.HostFile("fwatchdog", 0o755, wd)}); err != nil {
		return fmt.Errorf("reading the watchdog: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tar.Bytes())), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	// BuildKit's export needs the platform in the config.
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	dst, err := name.ParseReference(b.reg.Host+"/openfaas/classic-watchdog:0.3.3", name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(dst, img, remote.WithContext(ctx))
}

// vmHWM is the peak resident set size of process pid.
func vmHWM(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmHWM %q: %w", pid, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// treeSample is how often sampleTree reads the process table.
const treeSample = 25 * time.Millisecond

// sampleTree samples the summed RSS of pid and its descendants until the
// returned function is called, which returns the largest sum seen.
func sampleTree(pid int) func() int64 {
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var hi int64
		t := time.NewTicker(treeSample)
		defer t.Stop()
		for {
			hi = max(hi, treeRSS(pid))
			select {
			case <-done:
				peak <- hi
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-peak
	}
}

// treeRSS sums the RSS of pid and its descendants, from /proc.
func treeRSS(root int) int64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	parent := map[int]int{}
	rss := map[int]int64{}
	page := int64(os.Getpagesize())
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces: fields start
		// after its closing parenthesis (state, ppid, … rss is 24th).
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 22 {
			continue
		}
		var ppid int
		var pages int64
		fmt.Sscanf(f[1], "%d", &ppid)
		fmt.Sscanf(f[21], "%d", &pages)
		parent[pid], rss[pid] = ppid, pages*page
	}
	var sum int64
	for pid, r := range rss {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += r
				break
			}
		}
	}
	return sum
}

// dfResults are the Dockerfile suite's runs per function, case and tool.
type dfResults struct {
	funcs []*dfFunction
	runs  map[string]map[string]map[string][]dfRun
	sizes map[string]map[string]*registrytest.Manifest
}

func (r *dfResults) print(w io.Writer, runs int) {
	var missed []string
	fmt.Fprintf(w, "\n### Dockerfile functions: kiln against BuildKit v0.34.2, %d runs per case (medians)\n\n", runs)
	fmt.Fprintln(w, "| Dockerfile | case | kiln | BuildKit (buildctl) | BuildKit with buildkitd start+stop | RUN sleeps | kiln beyond RUNs | BuildKit beyond RUNs | met | peak RSS kiln (own / tree) | peak RSS BuildKit (buildkitd / tree) |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: |")
	for _, f := range r.funcs {
		for _, c := range dfCases {
			k, bk := r.runs[f.title][c]["kiln"], r.runs[f.title][c]["BuildKit"]
			sleep := time.Duration(f.sleeps[c]) * runSleep
			kt, bt := dfMedian(k, func(x dfRun) time.Duration { return x.took }), dfMedian(bk, func(x dfRun) time.Duration { return x.took })
			fmt.Fprintf(w, "| %s | %s | %.2f s | %.2f s | %.2f s | %.0f s | %.2f s | %.2f s | %s | %s / %s | %s / %s |\n",
				f.title, c, kt.Seconds(), bt.Seconds(), dfMedian(bk, func(x dfRun) time.Duration { return x.total }).Seconds(),
				sleep.Seconds(), (kt - sleep).Seconds(), (bt - sleep).Seconds(), yesNo(kt-sleep <= bt-sleep),
				humanSize(peak(k, func(x dfRun) int64 { return x.maxRSS })), humanSize(peak(k, func(x dfRun) int64 { return x.treeRSS })),
				humanSize(peak(bk, func(x dfRun) int64 { return x.maxRSS })), humanSize(peak(bk, func(x dfRun) int64 { return x.treeRSS })))
			if kt > bt && len(k) > 0 {
				missed = append(missed, fmt.Sprintf("- %s, %s: %s", f.title, c, strings.Join(k[len(k)-1].steps, "; ")))
			}
		}
	}
	fmt.Fprintln(w, "\n| Dockerfile | image size, compressed (config + layers): kiln | BuildKit | kiln/BuildKit | layers (kiln / BuildKit) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- |")
	for _, f := range r.funcs {
		k, bk := r.sizes[f.title]["kiln"], r.sizes[f.title]["BuildKit"]
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %d / %d |\n", f.title, humanSize(k.CompressedSize()), humanSize(bk.CompressedSize()),
			float64(k.CompressedSize())/float64(bk.CompressedSize()), len(k.Layers), len(bk.Layers))
	}
	fmt.Fprint(w, "\nBoth build the same Dockerfiles FROM kiln's debian base on the one local registry and push there. ")
	fmt.Fprint(w, "dockerfile-hello copies the watchdog from "+watchdogRef+": kiln substitutes its own watchdog (an image of /fwatchdog alone); ")
	fmt.Fprint(w, "BuildKit gets that same image, pushed to the registry, through the named context `context:"+watchdogRef+"`. ")
	fmt.Fprint(w, "Cold = a new kiln --cache-dir / a new buildkitd --root and a new repository per run; unchanged and edit reuse one warm cache and repository per tool. ")
	fmt.Fprint(w, "The edit changes one file copied before a RUN (greeting.sh, data.txt, a.txt). ")
	fmt.Fprint(w, "BuildKit's compared time is buildctl's alone, with buildkitd already up (started and stopped around each run, untimed); the next column adds its start and stop. ")
	fmt.Fprintf(w, "Beyond RUNs = wall time minus %s for each sleeping RUN the case must run (dockerfile-sleep: cold and edit); the other RUNs take milliseconds and count as overhead for both. ", runSleep)
	fmt.Fprint(w, "Met: kiln's time beyond RUNs is no more than BuildKit's. ")
	fmt.Fprintf(w, "Peak RSS is the largest over the case's runs: kiln's own from rusage (which holds its largest waited-for child), buildkitd's VmHWM; tree = the largest sum of RSS over the process and its descendants, sampled every %s (so it can miss a run of a few tens of ms).\n", treeSample)
	if len(missed) > 0 {
		fmt.Fprint(w, "\nkiln's steps in the last run of each case that missed the target:\n\n")
		fmt.Fprintln(w, strings.Join(missed, "\n"))
	}
	fmt.Fprint(w, "\nRuns in seconds:\n\n")
	for _, f := range r.funcs {
		for _, c := range dfCases {
			for _, t := range []string{"kiln", "BuildKit"} {
				var s []string
				for _, run := range r.runs[f.title][c][t] {
					s = append(s, fmt.Sprintf("%.2f", run.took.Seconds()))
				}
				fmt.Fprintf(w, "- %s, %s, %s: %s\n", f.title, c, t, strings.Join(s, ", "))
			}
		}
	}
}

func dfMedian(runs []dfRun, of func(dfRun) time.Duration) time.Duration {
	d := make([]time.Duration, len(runs))
	for i, r := range runs {
		d[i] = of(r)
	}
	return medianOf(d)
}

func peak(runs []dfRun, of func(dfRun) int64) int64 {
	var hi int64
	for _, r := range runs {
		hi = max(hi, of(r))
	}
	return hi
}
