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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/test/debianrepo"
	"github.com/kiln-build/kiln/test/registrytest"
)

// The Java sample, the handler both the java and the dev suites edit, and
// the string their edits replace.
const (
	javaSample   = "java-hello"
	javaLang     = "java11"
	javaHandler  = "src/main/java/com/openfaas/function/Handler.java"
	javaGreeting = `"Hello, Java"`
)

// Targets of the java suite, from the issue.
const (
	javaEditTarget = 2500 * time.Millisecond // Handler.java edit → pushed
	javaSizeTarget = 5.0                     // full JRE / jlink, uncompressed
)

// javaReadyTimeout bounds one kiln run until its first 200, the untimed
// first run (pull and unpack) included.
const javaReadyTimeout = 2 * time.Minute

// javaMissing is why Java cannot be built on this machine.
type javaMissing string

func (m javaMissing) Error() string { return string(m) }

// javaEnv checks for a JDK, Maven and what java-hello needs of Debian's
// Maven repository, and returns the environment that points the user's
// Maven and Gradle at that repository (Maven Central is unreachable here),
// as the e2e suite does: a settings.xml in a home of the benchmark's own,
// read through MAVEN_OPTS=-Duser.home, and a Gradle init script. kiln
// itself knows no mirror. What is missing is a javaMissing.
func (b *bench) javaEnv() ([]string, error) {
	for _, p := range []string{"javac", "jlink", "jdeps", "mvn"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, javaMissing(p + " is not installed")
		}
	}
	if missing := debianrepo.Missing(); missing != "" {
		return nil, javaMissing(missing)
	}
	return debianrepo.Env(filepath.Join(b.work, "java-home"))
}

// javaRuntime is one runtime of java-hello's image, chosen by a build arg,
// and what the suite measured of it.
type javaRuntime struct {
	title    string
	buildArg string // KEY=VALUE, "" for the default
	repo     string
	// sizeGoal holds the runtime's size against javaSizeTarget× jlink's.
	sizeGoal bool

	image                    string // by digest
	digest                   string
	compressed, uncompressed int64
	layers                   []registrytest.Descriptor
	layerNames               []string
	// identical is set when the image is the default's: kiln ignored the
	// build arg.
	identical bool
	firstOK   []time.Duration // kiln run start → first 200
	buildErr  error
	runErr    error
}

// javaResult is what the java suite measured.
type javaResult struct {
	cold, edit []runResult
	runtimes   []*javaRuntime // the default first
	skip       string
}

// javaSuite measures java-hello (java11, commons-lang3 from Debian's Maven
// repository): cold build+push, Handler.java edit → pushed, the image size
// of the default jlink runtime, jlink with a CDS archive and Debian's full
// JRE, and each one's time from `kiln run` to its first 200.
func (b *bench) javaSuite(ctx context.Context, w io.Writer) error {
	res := &javaResult{runtimes: []*javaRuntime{
		{title: "jlink (default)", repo: javaSample},
		{title: "jlink + CDS archive", buildArg: "JAVA_CDS=true", repo: javaSample + "-cds"},
		{title: "full Debian JRE", buildArg: "JAVA_RUNTIME=jre", repo: javaSample + "-jre", sizeGoal: true},
	}}
	env, err := b.javaEnv()
	var missing javaMissing
	if errors.As(err, &missing) {
		res.skip = missing.Error()
		b.logf("java: skipped: %s", res.skip)
		printJava(w, res, b.cfg.runs)
		return nil
	}
	if err != nil {
		return err
	}
	src := filepath.Join(b.work, "src-"+javaSample)
	if err := copyDir(filepath.Join(b.cfg.samples, javaSample), src); err != nil {
		return err
	}
	handler := filepath.Join(src, javaHandler)
	orig, err := os.ReadFile(handler)
	if err != nil {
		return err
	}
	if bytes.Count(orig, []byte(javaGreeting)) != 1 {
		return fmt.Errorf("%s: %s is not there once", handler, javaGreeting)
	}
	logRun := func(name string, r runResult) {
		b.logf("%-10s %-28s %7.3fs  %d blobs uploaded, %d mounted", javaSample, name, r.took.Seconds(), r.uploads, r.mounts)
	}

	jlink := res.runtimes[0]
	t := b.javaTool(src, env, jlink.buildArg)
	for i := range b.cfg.runs {
		r, err := b.once(ctx, t, fmt.Sprintf("%s-cold-%d", javaSample, i), b.newDir("cache-cold-java"))
		if err != nil {
			return err
		}
		logRun(caseCold, r)
		res.cold = append(res.cold, r)
	}

	// Each runtime once on one cache, from the unedited source; the
	// default's build primes the cache and repository of the edits.
	cache := b.newDir("cache-steady-java")
	for _, rt := range res.runtimes {
		r, err := b.once(ctx, b.javaTool(src, env, rt.buildArg), rt.repo, cache)
		if err != nil {
			if rt == jlink {
				return err
			}
			rt.buildErr = err
			b.logf("java %s: %s", rt.title, failure(err))
			continue
		}
		logRun("build "+rt.title, r)
		if err := b.javaImage(ctx, rt); err != nil {
			return fmt.Errorf("%s: %w", rt.title, err)
		}
		rt.identical = rt != jlink && rt.digest == jlink.digest
	}

	for i := range b.cfg.runs {
		edited := bytes.Replace(orig, []byte(javaGreeting), fmt.Appendf(nil, `"Hello, Java (edit %d)"`, i+1), 1)
		if err := os.WriteFile(handler, edited, 0o644); err != nil {
			return err
		}
		r, err := b.once(ctx, t, jlink.repo, cache)
		if err != nil {
			return err
		}
		logRun("Handler.java edit → pushed", r)
		res.edit = append(res.edit, r)
	}

	// Startup: one untimed run per image unpacks its layers into the run
	// cache; the timed runs then take turns.
	runCache := b.newDir("cache-run-java")
	for i := -1; i < b.cfg.runs; i++ {
		for _, rt := range res.runtimes {
			if rt.buildErr != nil || rt.runErr != nil || rt.identical {
				continue
			}
			took, err := b.firstOK(ctx, rt.image, runCache)
			if err != nil {
				rt.runErr = err
				b.logf("java %s: kiln run: %s", rt.title, failure(err))
				continue
			}
			if i < 0 {
				b.logf("java %-20s kiln run → first 200, untimed first run: %d ms", rt.title, took.Milliseconds())
				continue
			}
			b.logf("java %-20s kiln run → first 200: %d ms", rt.title, took.Milliseconds())
			rt.firstOK = append(rt.firstOK, took)
		}
	}
	printJava(w, res, b.cfg.runs)
	return nil
}

// javaTool builds and pushes src as java11, with buildArg unless it is "".
func (b *bench) javaTool(src string, env []string, buildArg string) *tool {
	return &tool{name: javaSample, command: func(ctx context.Context, repo, cache string) *exec.Cmd {
		args := []string{"build", src, "--lang", javaLang, "--image", b.reg.Host + "/" + repo + ":latest", "--push", "--cache-dir", cache}
		if buildArg != "" {
			args = append(args, "--build-arg", buildArg)
		}
		cmd := exec.CommandContext(ctx, b.cfg.kiln, args...)
		cmd.Env = append(b.env(), env...)
		return cmd
	}}
}

// javaImage reads rt's pushed image: its reference by digest, sizes and
// layers.
func (b *bench) javaImage(ctx context.Context, rt *javaRuntime) error {
	m, err := b.reg.Manifest(ctx, rt.repo, "latest")
	if err != nil {
		return err
	}
	if m.Digest == "" {
		return fmt.Errorf("the registry sent no digest for %s:latest", rt.repo)
	}
	rt.digest, rt.image, rt.layers = m.Digest, b.reg.Host+"/"+rt.repo+"@"+m.Digest, m.Layers
	if rt.compressed, rt.uncompressed, err = b.imageSizes(ctx, rt.repo, m); err != nil {
		return err
	}
	rt.layerNames, err = b.layerNames(ctx, rt.repo, m)
	return err
}

// firstOK starts `kiln run image` on free ports and times it from the
// process start to the first 200 on GET /, then stops it with SIGTERM and
// waits for it to exit.
func (b *bench) firstOK(ctx context.Context, image, cache string) (time.Duration, error) {
	// The run's other ports are its own, in its network namespace.
	watchdog, err := registrytest.FreePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, b.cfg.kiln, "run", image, "--port", strconv.Itoa(watchdog), "--cache-dir", cache)
	cmd.Env = b.env()
	client := localClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", watchdog)
	start := time.Now()
	p, err := startProcess(cmd)
	if err != nil {
		return 0, err
	}
	defer p.stop(syscall.SIGTERM)
	for {
		if _, ok := getOK(client, url); ok {
			return time.Since(start), nil
		}
		if p.exited() {
			return 0, fmt.Errorf("kiln run exited before answering 200:\n%s", p.output())
		}
		if time.Since(start) > javaReadyTimeout {
			return 0, fmt.Errorf("kiln run: no 200 from GET / within %s:\n%s", javaReadyTimeout, p.output())
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		time.Sleep(devPoll)
	}
}

// failure is err in one line, for a table cell or the log: kiln's own
// error line when err holds kiln's output, else err's first line.
func failure(err error) string {
	msg := err.Error()
	line, _, _ := strings.Cut(msg, "\n")
	if strings.Contains(msg, "\nkiln: ") {
		line = lastKilnLine(msg)
	}
	return strings.ReplaceAll(line, "|", "\\|")
}

func printJava(w io.Writer, r *javaResult, runs int) {
	fmt.Fprintf(w, "\n### Java (%s): %s build+push to the local registry and kiln run, medians of %d\n\n", javaLang, javaSample, runs)
	if r.skip != "" {
		fmt.Fprintf(w, "Skipped: %s.\n", r.skip)
		return
	}
	fmt.Fprintf(w, "| runtime | build arg | cold build+push | Handler.java edit → pushed | ≤ %s | blobs uploaded per run (cold / edit) | image compressed | image uncompressed | uncompressed / jlink's | time to first 200 | notes |\n", seconds(javaEditTarget))
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | :---: | --- | ---: | ---: | ---: | ---: | --- |")
	jlink := r.runtimes[0]
	for _, rt := range r.runtimes {
		arg := "–"
		if rt.buildArg != "" {
			arg = "`" + rt.buildArg + "`"
		}
		if rt.buildErr != nil {
			fmt.Fprintf(w, "| %s | %s | – | – | – | – | – | – | – | – | **build failed**: %s |\n", rt.title, arg, failure(rt.buildErr))
			continue
		}
		cold, edit, met, ups := "–", "–", "–", "–"
		if rt == jlink {
			e := median(r.edit)
			cold, edit, met = fmt.Sprintf("%.2f s", median(r.cold).Seconds()), fmt.Sprintf("%.2f s", e.Seconds()), yesNo(e <= javaEditTarget)
			ups = blobs(r.cold) + " / " + blobs(r.edit)
		}
		ratio := float64(rt.uncompressed) / float64(jlink.uncompressed)
		vs, start := fmt.Sprintf("%.2f×", ratio), "–"
		var notes []string
		switch {
		case rt.identical:
			vs = "–"
			notes = append(notes, "**the same image as the default**: kiln ignored the build arg")
		case rt.sizeGoal:
			vs += fmt.Sprintf(" (≥ %g×: %s)", javaSizeTarget, yesNo(ratio >= javaSizeTarget))
			notes = append(notes, fmt.Sprintf("compressed %.2f× jlink's", float64(rt.compressed)/float64(jlink.compressed)))
		}
		switch {
		case rt.runErr != nil:
			start = "failed"
			notes = append(notes, "**kiln run failed**: "+failure(rt.runErr))
		case len(rt.firstOK) > 0:
			start = fmt.Sprintf("%d ms", medianOf(rt.firstOK).Milliseconds())
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rt.title, arg, cold, edit, met, ups,
			humanSize(rt.compressed), humanSize(rt.uncompressed), vs, start, strings.Join(notes, "; "))
	}
	fmt.Fprintf(w, "\nCold = a new kiln --cache-dir and repository per run, so Maven resolution, javac, jdeps and jlink all run "+
		"(Maven resolves from Debian's /usr/share/maven-repo through a settings.xml mirror; its own local repository stays warm, as npm's and pip's do in the langs suite). "+
		"Each runtime is then built once on one cache from the unedited sample; the edits rebuild the default on that cache, each run a different greeting. "+
		"Image sizes are the layers' (no config). The full JRE is Debian's openjdk-17-jre-headless on the same java base; "+
		"the issue's ≥ %g× compares jlink with the 175–250 MB java11 template image, this table with that JRE. "+
		"Time to first 200: `kiln run IMAGE@digest` started fresh each run, from the process start to the first 200 on GET / (polled every %s), "+
		"after one untimed run per image that unpacks its layers into kiln's cache; SIGTERM and wait between runs. Runs:\n\n",
		javaSizeTarget, devPoll)
	fmt.Fprintf(w, "- %s, s: %s\n", caseCold, secondsList(r.cold))
	fmt.Fprintf(w, "- Handler.java edit → pushed, s: %s\n", secondsList(r.edit))
	for _, rt := range r.runtimes {
		if rt.buildErr != nil || rt.identical {
			continue
		}
		ms := []string{"–"}
		if len(rt.firstOK) > 0 {
			ms = ms[:0]
		}
		for _, d := range rt.firstOK {
			ms = append(ms, strconv.FormatInt(d.Milliseconds(), 10))
		}
		layers := "layers (compressed): " + layerSummary(rt.layerNames, rt.layers, nil)
		if rt != jlink {
			layers = "layers the default lacks (compressed): " + layerSummary(rt.layerNames, rt.layers, jlink.layers)
		}
		fmt.Fprintf(w, "- %s: time to first 200, ms: %s; %s\n", rt.title, strings.Join(ms, ", "), layers)
	}
}

// secondsList is the runs' times in seconds, comma-separated.
func secondsList(runs []runResult) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprintf("%.2f", r.took.Seconds()))
	}
	return strings.Join(s, ", ")
}

// layerSummary lists layers with their names and compressed sizes, but
// those in except; consecutive layers named "BASE: PACKAGE" (a base's
// packages) are summed into one entry.
func layerSummary(names []string, layers, except []registrytest.Descriptor) string {
	var parts []string
	var group string
	var n int
	var size int64
	flush := func() {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d layers, %s", group, n, humanSize(size)))
		}
		group, n, size = "", 0, 0
	}
	for i, l := range layers {
		if slices.ContainsFunc(except, func(d registrytest.Descriptor) bool { return d.Digest == l.Digest }) {
			continue
		}
		if base, _, ok := strings.Cut(names[i], ": "); ok {
			if base != group {
				flush()
				group = base
			}
			n++
			size += l.Size
			continue
		}
		flush()
		parts = append(parts, fmt.Sprintf("%s %s", names[i], humanSize(l.Size)))
	}
	flush()
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
