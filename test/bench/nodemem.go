package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// nodeHeavy is the memory benchmark's function: a Node handler whose
// package-lock.json pins dependencies that weigh about 490 MB installed
// (apparent size; 680 MB on disk, 56,700 files): googleapis (205 MB),
// monaco-editor (100 MB), aws-sdk v2 (94 MB), @mui/icons-material and
// @mui/material (31 MB after npm's dedupe), typescript (23 MB), react and
// react-dom.
const nodeHeavy = "node-heavy"

// memSample is how often the memory suite reads the process table: a
// peak between two samples of a child that lives less than this is lost,
// kiln's own VmHWM only loses its growth in its last memSample.
const memSample = 10 * time.Millisecond

// memRun is one build of node-heavy by kiln's executor.
type memRun struct {
	took time.Duration
	// own is kiln's peak RSS alone (its VmHWM); children the largest
	// VmHWM per command name among its descendants; tree the largest sum
	// of the RSS of kiln and its descendants at one time.
	own      int64
	children map[string]int64
	tree     int64
	// rusage is wait4's ru_maxrss of kiln: the larger of its own peak and
	// its children's, what /usr/bin/time -v reports.
	rusage int64
	layer  int64
}

// memSuite builds node-heavy with `kiln executor` as a build pod runs it
// (uid 65532 when the benchmark runs as root, HOME and the cache in
// fresh folders, npm's cache cold) and pushes it, measuring kiln's own
// peak memory apart from npm's and node's.
func (b *bench) memSuite(ctx context.Context, w io.Writer) error {
	src := filepath.Join(b.cfg.benchData, nodeHeavy)
	runs := min(b.cfg.runs, 3)
	// The build's user walks into the benchmark's folder (mode 0700).
	if err := os.Chmod(b.work, 0o755); err != nil {
		return err
	}
	var res []memRun
	for i := range runs {
		r, err := b.executorRun(ctx, src, fmt.Sprintf("bench/mem-%d", i))
		if err != nil {
			return err
		}
		b.logf("node-heavy run %d: %.1fs, kiln %s, children %v, tree %s", i+1, r.took.Seconds(), humanSize(r.own), r.children, humanSize(r.tree))
		res = append(res, r)
	}
	printMem(w, res)
	return nil
}

// executorRun runs kiln executor on a copy of src, owned by the build's
// user, and pushes the image to repo.
func (b *bench) executorRun(ctx context.Context, src, repo string) (memRun, error) {
	b.seq++
	dir := filepath.Join(b.work, fmt.Sprintf("mem-%d", b.seq))
	ctxDir, home := filepath.Join(dir, "context"), filepath.Join(dir, "home")
	if err := copyDir(src, ctxDir); err != nil {
		return memRun{}, err
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return memRun{}, err
	}
	// A copy the build's user may run: bench.sh's snapshot folder is
	// root's alone. The watchdogs kiln puts in images are beside it.
	kiln := filepath.Join(dir, "kiln")
	watchdogs, _ := filepath.Glob(filepath.Join(filepath.Dir(b.cfg.kiln), "kiln-watchdog-*"))
	for _, f := range append(watchdogs, b.cfg.kiln) {
		if err := copyFile(f, filepath.Join(dir, filepath.Base(f)), 0o755); err != nil {
			return memRun{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kiln, "executor", "--context", "dir://"+ctxDir, "--lang", "node20",
		"--destination", b.reg.Host+"/"+repo+":1", "--digest-file", filepath.Join(home, "digest"))
	cmd.Dir = home
	cmd.Env = append(b.env(), "HOME="+home, "TMPDIR="+home, "KILN_CACHE_DIR="+filepath.Join(home, "cache"))
	if os.Geteuid() == 0 {
		// A build pod's user: the node pack needs no root.
		if err := chownTree(dir, 65532, 65532); err != nil {
			return memRun{}, err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return memRun{}, err
	}
	stop := sampleMemory(cmd.Process.Pid)
	err := cmd.Wait()
	r := stop()
	r.took = time.Since(start)
	if err != nil {
		return memRun{}, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rusage = ru.Maxrss << 10
	}
	m, err := b.reg.Manifest(ctx, repo, "1")
	if err != nil {
		return memRun{}, err
	}
	for _, l := range m.Layers {
		r.layer = max(r.layer, l.Size)
	}
	return r, os.RemoveAll(dir)
}

// sampleMemory reads, every memSample until the returned function is
// called, kiln's VmHWM, each descendant's VmHWM and the tree's summed RSS.
func sampleMemory(pid int) func() memRun {
	done := make(chan struct{})
	res := make(chan memRun)
	go func() {
		r := memRun{children: map[string]int64{}}
		t := time.NewTicker(memSample)
		defer t.Stop()
		for {
			if hwm, err := vmHWM(pid); err == nil {
				r.own = max(r.own, hwm)
			}
			r.tree = max(r.tree, treeRSS(pid))
			for _, c := range descendants(pid) {
				// A child that exits between the two reads is skipped.
				name, err := commName(c)
				if err != nil {
					continue
				}
				if hwm, err := vmHWM(c); err == nil {
					r.children[name] = max(r.children[name], hwm)
				}
			}
			select {
			case <-done:
				res <- r
				return
			case <-t.C:
			}
		}
	}()
	return func() memRun {
		close(done)
		return <-res
	}
}

// descendants lists the processes under root, from /proc.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		var ppid int
		if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
			fmt.Sscanf(f[1], "%d", &ppid)
		}
		parent[pid] = ppid
	}
	var ds []int
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				ds = append(ds, pid)
				break
			}
		}
	}
	return ds
}

// commName is a process's command name; npm names itself "npm ci".
func commName(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b)), err
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func printMem(w io.Writer, runs []memRun) {
	fmt.Fprintf(w, "\n### Executor memory: Node function with ~490 MB of npm dependencies (%s), %d runs\n\n", nodeHeavy, len(runs))
	fmt.Fprintf(w, "`kiln executor --lang node20` as a build pod runs it (uid 65532, cold kiln and npm caches), npm ci and push to a local registry. Peaks sampled every %s from /proc; medians, max in parentheses.\n\n", memSample)
	med := func(of func(memRun) int64) string {
		v := make([]int64, len(runs))
		for i, r := range runs {
			v[i] = of(r)
		}
		slices.Sort(v)
		return fmt.Sprintf("%s (%s)", humanSize(v[len(v)/2]), humanSize(v[len(v)-1]))
	}
	took := make([]time.Duration, len(runs))
	for i, r := range runs {
		took[i] = r.took
	}
	names := map[string]bool{}
	for _, r := range runs {
		for n := range r.children {
			names[n] = true
		}
	}
	fmt.Fprintln(w, "| measure | value | target |")
	fmt.Fprintln(w, "|---|---|---|")
	own := med(func(r memRun) int64 { return r.own })
	met := "met"
	if peakOf(runs, func(r memRun) int64 { return r.own }) >= 256<<20 {
		met = "**missed**"
	}
	fmt.Fprintf(w, "| kiln's own peak RSS (VmHWM) | %s | < 256 MiB: %s |\n", own, met)
	for _, n := range slices.Sorted(maps.Keys(names)) {
		fmt.Fprintf(w, "| child `%s` peak RSS | %s | |\n", n, med(func(r memRun) int64 { return r.children[n] }))
	}
	fmt.Fprintf(w, "| whole tree at once (sum of RSS) | %s | |\n", med(func(r memRun) int64 { return r.tree }))
	fmt.Fprintf(w, "| wait4 ru_maxrss (kiln or its largest child, as /usr/bin/time -v) | %s | |\n", med(func(r memRun) int64 { return r.rusage }))
	fmt.Fprintf(w, "| node_modules layer, compressed | %s | |\n", med(func(r memRun) int64 { return r.layer }))
	fmt.Fprintf(w, "| build + push time | %s | |\n", seconds(medianOf(took).Round(100*time.Millisecond)))
}

// peakOf is the largest of of over runs.
func peakOf[T any](runs []T, of func(T) int64) int64 {
	var hi int64
	for _, r := range runs {
		hi = max(hi, of(r))
	}
	return hi
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}
