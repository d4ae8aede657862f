package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

// devCase is one language under kiln dev: a sample as the one function of
// a stack, and the visible string an edit changes.
type devCase struct {
	title, sample, lang string
	env                 []string
	// buildArgs go to the stack's build_args.
	buildArgs map[string]string
	// handler is the file edited (relative to the sample), old the string
	// replaced and edit its replacement, with %d for the run; the answer
	// to GET /function/fn then holds marker(%d).
	handler, old, edit, marker string
	target                     time.Duration
	// skip, when set, is why the case was not measured.
	skip string
}

// devResult is what one language measured.
type devResult struct {
	c *devCase
	// client is write → first new answer through the gateway; kiln is
	// kiln's own "edit → ready in N ms".
	client, kiln []time.Duration
	// rebuild is the time of the layers rebuilt and start that of the new
	// instance until healthy, both as kiln prints them.
	rebuild, start []time.Duration
	err            error
}

// Bounds of the dev suite's waits.
const (
	devStartTimeout = 5 * time.Minute  // kiln dev's first build and deploy
	devEditTimeout  = 30 * time.Second // one edit until the new answer
	devPoll         = 10 * time.Millisecond
)

// kiln dev's lines per change: the layers rebuilt, the new instance
// healthy, and the whole change published.
var (
	devRebuilt = regexp.MustCompile(`kiln: fn: rebuilt layers: (.*)`)
	devLayer   = regexp.MustCompile(`\((\d+(?:\.\d+)?)(µs|ms|s)\)`)
	devStarted = regexp.MustCompile(`kiln: fn ready in (\d+) ms`)
	devReady   = regexp.MustCompile(`kiln: fn: edit → ready in (\d+) ms`)
)

func (b *bench) devSuite(ctx context.Context, w io.Writer) error {
	wheels := filepath.Join(b.work, "dev-wheelhouse")
	if err := os.MkdirAll(wheels, 0o755); err != nil {
		return err
	}
	if _, err := wheelhouse.Write(wheels, "kiln_greeting", "1.0", map[string]string{
		"kiln_greeting/__init__.py": "def greet(name):\n    return \"Hello from \" + name\n",
	}); err != nil {
		return err
	}
	if err := serverWheels(wheels); err != nil {
		return err
	}
	cases := []*devCase{
		{title: "Go (golang-middleware)", sample: "go-hello", lang: "golang-middleware", buildArgs: map[string]string{"TEST_ENABLED": "false"},
			handler: "handler.go", old: `"Hello from kiln")`, edit: `"Hello from kiln (dev edit %d)")`, marker: "(dev edit %d)", target: time.Second},
		{title: "Node (node20)", sample: "node-hello", lang: "node20",
			handler: "handler.js", old: "Hello from kiln", edit: "Hello from kiln (dev edit %d)", marker: "(dev edit %d)", target: 500 * time.Millisecond},
		{title: "Python (python3-http)", sample: "python-http", lang: "python3-http", env: wheelhouse.Env(wheels),
			handler: "handler.py", old: `event.query.get("name", "kiln")`, edit: `event.query.get("name", "kiln (dev edit %d)")`, marker: "(dev edit %d)", target: 500 * time.Millisecond},
		b.javaDevCase(),
	}
	var results []*devResult
	for _, c := range cases {
		r := &devResult{c: c}
		results = append(results, r)
		if c.skip != "" {
			b.logf("dev %s: skipped: %s", c.title, c.skip)
			continue
		}
		err := b.measureDev(ctx, c, r)
		switch {
		case err == nil:
		case c.lang != "java11":
			return fmt.Errorf("kiln dev, %s: %w", c.title, err)
		case strings.Contains(err.Error(), "is not one kiln builds"):
			// Java is still being finished: report rather than stop.
			c.skip = "kiln does not build " + c.lang + " yet"
			b.logf("dev %s: skipped: %v", c.title, err)
		default:
			r.err = err
			b.logf("dev %s: %v", c.title, err)
		}
	}
	printDev(w, results, b.cfg.runs)
	return nil
}

// javaDevCase is java-hello with Maven pointed at Debian's repository
// (javaEnv); skipped without it.
func (b *bench) javaDevCase() *devCase {
	c := &devCase{title: "Java (java11)", sample: "java-hello", lang: "java11",
		handler: javaHandler, old: javaGreeting, edit: `"Hello, Java (dev edit %d)"`, marker: "(dev edit %d)", target: javaEditTarget}
	env, err := b.javaEnv()
	if err != nil {
		c.skip = err.Error()
		return c
	}
	c.env = env
	return c
}

// measureDev starts kiln dev --local on a one-function stack, waits until
// it serves, then edits the handler runs times, each time timing the
// write until the gateway answers with the edit.
func (b *bench) measureDev(ctx context.Context, c *devCase, r *devResult) error {
	dir := filepath.Join(b.work, "dev-"+c.sample)
	fn := filepath.Join(dir, "fn")
	if err := copyDir(filepath.Join(b.cfg.samples, c.sample), fn); err != nil {
		return err
	}
	var stack strings.Builder
	fmt.Fprintf(&stack, "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  fn:\n    lang: %s\n    handler: ./fn\n    image: %s/dev-%s:latest\n", c.lang, b.reg.Host, c.sample)
	if len(c.buildArgs) > 0 {
		stack.WriteString("    build_args:\n")
		for k, v := range c.buildArgs {
			fmt.Fprintf(&stack, "      %s: %q\n", k, v)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(stack.String()), 0o644); err != nil {
		return err
	}
	handler := filepath.Join(fn, c.handler)
	orig, err := os.ReadFile(handler)
	if err != nil {
		return err
	}
	if bytes.Count(orig, []byte(c.old)) != 1 {
		return fmt.Errorf("%s: %q is not there once", handler, c.old)
	}
	port, err := registrytest.FreePort()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, b.cfg.kiln, "dev", "-f", "stack.yml", "--local", "--port", strconv.Itoa(port), "--cache-dir", b.newDir("cache-dev-"+c.sample))
	cmd.Dir = dir
	cmd.Env = append(b.env(), c.env...)
	dev, err := startProcess(cmd)
	if err != nil {
		return err
	}
	defer dev.stop(os.Interrupt)

	url := fmt.Sprintf("http://127.0.0.1:%d/function/fn", port)
	client := localClient()
	get := func() (string, bool) { return getOK(client, url) }
	deadline := time.Now().Add(devStartTimeout)
	for {
		if _, ok := get(); ok && strings.Contains(dev.output(), "kiln: watching fn") {
			break
		}
		if dev.exited() {
			return fmt.Errorf("kiln dev exited before serving: %s\n%s", lastKilnLine(dev.output()), dev.output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kiln dev did not serve within %s:\n%s", devStartTimeout, dev.output())
		}
		time.Sleep(100 * time.Millisecond)
	}

	for i := range b.cfg.runs {
		marker := fmt.Sprintf(c.marker, i+1)
		edited := bytes.Replace(orig, []byte(c.old), fmt.Appendf(nil, c.edit, i+1), 1)
		start := time.Now()
		if err := os.WriteFile(handler, edited, 0o644); err != nil {
			return err
		}
		var took time.Duration
		for {
			body, ok := get()
			if ok && strings.Contains(body, marker) {
				took = time.Since(start)
				break
			}
			if dev.exited() {
				return fmt.Errorf("kiln dev exited during edit %d:\n%s", i+1, dev.output())
			}
			if time.Since(start) > devEditTimeout {
				return fmt.Errorf("edit %d: no answer holding %q within %s (last %q):\n%s", i+1, marker, devEditTimeout, body, dev.output())
			}
			time.Sleep(devPoll)
		}
		// kiln prints its own figure once the deploy call returns; wait
		// for it, so the next edit does not land in this change.
		var kilnTook time.Duration
		for {
			if m := devReady.FindAllStringSubmatch(dev.output(), -1); len(m) > i {
				ms, _ := strconv.Atoi(m[i][1])
				kilnTook = time.Duration(ms) * time.Millisecond
				break
			}
			if time.Since(start) > devEditTimeout {
				return fmt.Errorf("edit %d: kiln printed no edit → ready line within %s:\n%s", i+1, devEditTimeout, dev.output())
			}
			time.Sleep(devPoll)
		}
		out := dev.output()
		out = out[strings.Index(out, "kiln: watching fn"):]
		rebuild, started := nthLayers(out, i), nthMillis(devStarted, out, i)
		b.logf("dev %-22s edit %d: answer after %4d ms, kiln says %4d ms (layers %d ms, new instance %d ms)", c.title, i+1, took.Milliseconds(), kilnTook.Milliseconds(), rebuild.Milliseconds(), started.Milliseconds())
		r.client = append(r.client, took)
		r.kiln = append(r.kiln, kilnTook)
		r.rebuild = append(r.rebuild, rebuild)
		r.start = append(r.start, started)
		// Let the old instance drain before the next save.
		time.Sleep(300 * time.Millisecond)
	}
	return nil
}

// localClient is an HTTP client for what kiln serves on 127.0.0.1: no
// proxy, a new connection per request, 5 s per request.
func localClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// getOK is GET url: the body, and whether the answer was a 200.
func getOK(client *http.Client, url string) (string, bool) {
	resp, err := client.Get(url)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err == nil && resp.StatusCode == http.StatusOK
}

// nthMillis is the N ms of re's i-th match in out, 0 if there is none.
func nthMillis(re *regexp.Regexp, out string, i int) time.Duration {
	m := re.FindAllStringSubmatch(out, -1)
	if len(m) <= i {
		return 0
	}
	ms, _ := strconv.Atoi(m[i][1])
	return time.Duration(ms) * time.Millisecond
}

// nthLayers sums the durations of the i-th "rebuilt layers" line in out.
func nthLayers(out string, i int) time.Duration {
	m := devRebuilt.FindAllStringSubmatch(out, -1)
	if len(m) <= i {
		return 0
	}
	var sum time.Duration
	for _, l := range devLayer.FindAllStringSubmatch(m[i][1], -1) {
		d, err := time.ParseDuration(l[1] + l[2])
		if err == nil {
			sum += d
		}
	}
	return sum
}

// process is a running kiln dev or kiln run, its output kept.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// output is what kiln printed so far, stdout and stderr.
func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p, p
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", strings.Join(cmd.Args, " "), err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig (os.Interrupt as Ctrl-C would, or SIGTERM) and waits;
// it kills the process if it does not exit within 30 s.
func (p *process) stop(sig os.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func printDev(w io.Writer, results []*devResult, runs int) {
	fmt.Fprintf(w, "\n### kiln dev --local: edit → ready, medians of %d edits\n\n", runs)
	fmt.Fprintln(w, "| function | write → new answer via gateway | kiln's \"edit → ready\" | of which: layers rebuilt | of which: new instance healthy | target | met | runs (client ms) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | :---: | --- |")
	for _, r := range results {
		switch {
		case r.c.skip != "":
			fmt.Fprintf(w, "| %s | – | – | – | – | ≤ %s | – | skipped: %s |\n", r.c.title, seconds(r.c.target), r.c.skip)
			continue
		case r.err != nil:
			first, _, _ := strings.Cut(r.err.Error(), "\n")
			fmt.Fprintf(w, "| %s | – | – | – | – | ≤ %s | **no** | failed: %s |\n", r.c.title, seconds(r.c.target), strings.ReplaceAll(first, "|", "\\|"))
			continue
		}
		client, kiln := medianOf(r.client), medianOf(r.kiln)
		var s []string
		for _, d := range r.client {
			s = append(s, strconv.FormatInt(d.Milliseconds(), 10))
		}
		fmt.Fprintf(w, "| %s | %d ms | %d ms | %d ms | %d ms | ≤ %s | %s | %s |\n", r.c.title, client.Milliseconds(), kiln.Milliseconds(),
			medianOf(r.rebuild).Milliseconds(), medianOf(r.start).Milliseconds(), seconds(r.c.target), yesNo(client <= r.c.target), strings.Join(s, ", "))
	}
	fmt.Fprintln(w, "\nOne-function stack under `kiln dev -f stack.yml --local`, warm after its first build (Go: TEST_ENABLED=false); each edit writes the handler with a new visible string, the client polls GET /function/fn every 10 ms from the write until the answer holds it; kiln's figure runs from the first file event, so it includes the 100 ms debounce; the two parts are kiln's own \"rebuilt layers\" and \"fn ready in\" lines (the rest is the debounce, the pack's work outside its layers, such as compiling Java, and writing the image).")
}

// lastKilnLine is the last line of kiln's output that kiln itself wrote
// (not a function's log), where its error is.
func lastKilnLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "kiln: ") {
			return lines[i]
		}
	}
	return "no output"
}

func medianOf(d []time.Duration) time.Duration {
	runs := make([]runResult, len(d))
	for i, x := range d {
		runs[i].took = x
	}
	return median(runs)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}
