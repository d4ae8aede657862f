package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/kiln-build/kiln/dev"
	"github.com/kiln-build/kiln/project"
)

// Mode is how progress shows on stderr.
type Mode int

const (
	// Quiet shows results and warnings only.
	Quiet Mode = iota
	// Plain shows a line per finished step, as it finishes.
	Plain
	// Live shows, on a terminal, a line per running step, updated in
	// place, above which finished steps print as in Plain.
	Live
	// JSON writes every event but the results as one JSON object per
	// line (project.JSONLines).
	JSON
)

// Choose picks the mode of a --progress value: "json", "plain", or
// "auto": Live on a terminal; elsewhere Plain for a command that builds,
// Quiet for the others. quiet (--quiet) makes auto Quiet; verbose (-v)
// makes it Plain, since log lines would break a live display.
func Choose(flag string, stderr io.Writer, verbose, quiet, builds bool) Mode {
	switch {
	case flag == "json":
		return JSON
	case flag == "plain", verbose:
		return Plain
	case quiet:
		return Quiet
	case IsTerminal(stderr):
		return Live
	case builds:
		return Plain
	}
	return Quiet
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Text renders events as lines of text. It is safe for concurrent use:
// events come from several goroutines.
type Text struct {
	stdout, stderr io.Writer
	mode           Mode
	json           project.Progress
	mu             sync.Mutex
	// live is the display of the running steps, in Live mode.
	live *live
}

// New returns a renderer in mode writing results to stdout and the rest
// to stderr.
func New(stdout, stderr io.Writer, mode Mode) *Text {
	t := &Text{stdout: stdout, stderr: stderr, mode: mode}
	switch mode {
	case JSON:
		t.json = project.JSONLines(stderr)
	case Live:
		t.live = newLive(stderr, width(stderr), &t.mu)
	}
	return t
}

// width is the terminal's width, 80 for a writer that is none.
func width(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if n, _, err := term.GetSize(int(f.Fd())); err == nil && n > 0 {
			return n
		}
	}
	return 80
}

// Logf writes a progress line, unless the mode is Quiet.
func (r *Text) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logf(format, args...)
}

// Warnf writes a line the user must see, prefixed "kiln: ".
func (r *Text) Warnf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnf(format, args...)
}

func (r *Text) logf(format string, args ...any) {
	if r.mode != Quiet {
		r.print(fmt.Sprintf(format, args...))
	}
}

func (r *Text) warnf(format string, args ...any) {
	r.print("kiln: " + fmt.Sprintf(format, args...))
}

// print writes lines to stderr, above the live display if there is one.
func (r *Text) print(lines ...string) {
	if r.live != nil {
		r.live.draw(lines)
		return
	}
	for _, l := range lines {
		fmt.Fprintln(r.stderr, l)
	}
}

// Event renders one event.
func (r *Text) Event(e project.Event) {
	if _, result := e.(project.Deployed); r.json != nil && !result {
		r.json(e)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := e.(type) {
	case project.StepStarted:
		if r.live != nil {
			r.live.start(e)
		}
	case project.StepProgress:
		if r.live != nil {
			r.live.progress(e)
		}
	case project.StepDone:
		line, ok := StepLine(e)
		switch {
		case r.live != nil && ok:
			r.live.end(e.ID, line)
		case r.live != nil:
			r.live.end(e.ID)
		case ok:
			r.logf("%s", line)
		}
	case project.Published:
		r.logf("%s: built in %s, published to %s in %s", e.Function, Duration(e.Build), e.Output, Duration(e.Publish))
	case project.Skipped:
		if e.Warning {
			r.warnf("skipping %s: %s", e.Function, e.Reason)
		} else {
			r.logf("skipping %s: %s", e.Function, e.Reason)
		}
	case project.Warning:
		r.warnf("%s", e)
	case project.Deployed:
		if r.live != nil {
			r.live.hide()
		}
		fmt.Fprintf(r.stdout, "Deployed %s (%s). %d %s.\nURL: %s\n", e.Function, e.Image, e.Code, statusText[e.Code], e.URL)
		if r.live != nil {
			r.live.draw(nil)
		}
	case project.Ready:
		r.warnf("%s ready in %d ms: %s", e.Function, e.Took.Milliseconds(), e.URL)
	case project.Pulling:
		r.warnf("pulling %s", e.Image)
	case project.Serving:
		r.warnf("local gateway on %s; Ctrl-C stops every function", e.URL)
	case project.GatewayLogin:
		r.warnf("local gateway login: %s, password in %s (saved for faas-cli in %s)", e.User, e.PasswordFile, e.FaasConfig)
	case project.GatewayStopping:
		r.warnf("stopping the functions")
	case project.DeployFailed:
		r.warnf("%v", e.Err)
	case project.BaseBuilt:
		var size int64
		for _, l := range e.Layers {
			size += l.Size
			r.logf("  %-44s %9s", l.Name, HumanSize(l.Size))
		}
		r.logf("built base %s for %s: %d layers, %s compressed, in %s", e.Name, e.Platform, len(e.Layers), HumanSize(size), e.Took.Round(time.Millisecond))
	case dev.Watching:
		r.warnf("watching %s; Ctrl-C stops", strings.Join(e.Functions, ", "))
	case dev.Changed:
		r.warnf("%s: %s changed", e.Function, strings.Join(e.Paths, ", "))
	case dev.Failed:
		if e.Serving {
			r.warnf("%v\nkiln: %s keeps serving the last good version", e.Err, e.Function)
		} else {
			r.warnf("%v\nkiln: %s waits for a change that fixes it", e.Err, e.Function)
		}
	case dev.Rebuilt:
		var rebuilt []string
		for _, l := range e.Layers {
			if !l.Cached {
				rebuilt = append(rebuilt, fmt.Sprintf("%s (%s)", l.Name, l.Duration.Round(time.Millisecond)))
			}
		}
		if len(rebuilt) == 0 {
			rebuilt = []string{"none"}
		}
		r.warnf("%s: rebuilt layers: %s", e.Function, strings.Join(rebuilt, ", "))
	case dev.Live:
		r.warnf("%s: edit → ready in %d ms", e.Function, e.Took.Milliseconds())
	}
}

// StepLine is the line of a finished step:
//
//	FUNCTION: STEP[ COUNT UNITs][, SIZE] (cached)
//	FUNCTION: STEP[ COUNT UNITs][, SIZE] in DURATION
//
// A failed step has none (the error says it), nor has a step that had
// nothing to do.
func StepLine(e project.StepDone) (string, bool) {
	if e.Err != "" || e.Empty {
		return "", false
	}
	var what []string
	if e.Unit != "" {
		what = append(what, plural(e.Count, e.Unit))
	}
	if e.Bytes > 0 {
		what = append(what, HumanSize(e.Bytes))
	}
	line := e.Function + ": " + e.Step
	if len(what) > 0 {
		line += " " + strings.Join(what, ", ")
	}
	if e.Cached {
		return line + " (cached)", true
	}
	return line + " in " + Duration(e.Took), true
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// statusText is how faas-cli names the gateway's answers to a deploy.
var statusText = map[int]string{200: "OK", 201: "Created", 202: "Accepted"}

// HumanSize writes n bytes as B, KB or MB.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Duration writes d to the millisecond under a second (812ms), to the
// tenth of a second above (1.2s, 1m3.5s).
func Duration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
