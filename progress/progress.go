package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kiln-build/kiln/dev"
	"github.com/kiln-build/kiln/project"
)

// Text renders events as lines of text. It is safe for concurrent use:
// events come from several goroutines.
type Text struct {
	stdout, stderr io.Writer
	progress       bool
	// json, when set, takes every event but the results on stdout.
	json project.Progress
	mu   sync.Mutex
}

// Option configures a Text.
type Option func(*Text)

// WithProgress shows progress lines (builds, layers, publishes). Default:
// only results and warnings.
func WithProgress(on bool) Option { return func(t *Text) { t.progress = on } }

// WithJSON sends every event but the results to p instead, such as
// project.JSONLines. Default: none.
func WithJSON(p project.Progress) Option { return func(t *Text) { t.json = p } }

// New returns a renderer writing results to stdout and the rest to
// stderr.
func New(stdout, stderr io.Writer, opts ...Option) *Text {
	t := &Text{stdout: stdout, stderr: stderr}
	for _, opt := range opts {
		opt(t)
	}
	return t
}

// Logf writes a progress line, when progress is shown.
func (r *Text) Logf(format string, args ...any) {
	if r.progress {
		fmt.Fprintf(r.stderr, format+"\n", args...)
	}
}

// Warnf writes a line the user must see, prefixed "kiln: ".
func (r *Text) Warnf(format string, args ...any) {
	fmt.Fprintf(r.stderr, "kiln: "+format+"\n", args...)
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
	case project.BuildStarted:
		r.Logf("building %s (%s, %s)", e.Function, e.Lang, e.Platform)
	case project.LayerDone:
		how := "cached"
		if !e.Layer.Cached {
			how = "built in " + e.Layer.Duration.Round(time.Millisecond).String()
		}
		r.Logf("  %s %-16s %9s  %s", e.Function, e.Layer.Name, HumanSize(e.Layer.Size), how)
	case project.Published:
		r.Logf("  %s: built in %s, published to %s in %s", e.Function, e.Build.Round(time.Millisecond), e.Output, e.Publish.Round(time.Millisecond))
	case project.Skipped:
		if e.Warning {
			r.Warnf("skipping %s: %s", e.Function, e.Reason)
		} else {
			r.Logf("skipping %s: %s", e.Function, e.Reason)
		}
	case project.Warning:
		r.Warnf("%s", e)
	case project.Deployed:
		fmt.Fprintf(r.stdout, "Deployed %s (%s). %d %s.\nURL: %s\n", e.Function, e.Image, e.Code, statusText[e.Code], e.URL)
	case project.Ready:
		r.Warnf("%s ready in %d ms: %s", e.Function, e.Took.Milliseconds(), e.URL)
	case project.Pulling:
		r.Warnf("pulling %s", e.Image)
	case project.Serving:
		r.Warnf("local gateway on %s; Ctrl-C stops every function", e.URL)
	case project.GatewayLogin:
		r.Warnf("local gateway login: %s, password in %s (saved for faas-cli in %s)", e.User, e.PasswordFile, e.FaasConfig)
	case project.GatewayStopping:
		r.Warnf("stopping the functions")
	case project.DeployFailed:
		r.Warnf("%v", e.Err)
	case project.BaseBuilt:
		var size int64
		for _, l := range e.Layers {
			size += l.Size
			r.Logf("  %-44s %9s", l.Name, HumanSize(l.Size))
		}
		r.Logf("built base %s for %s: %d layers, %s compressed, in %s", e.Name, e.Platform, len(e.Layers), HumanSize(size), e.Took.Round(time.Millisecond))
	case dev.Watching:
		r.Warnf("watching %s; Ctrl-C stops", strings.Join(e.Functions, ", "))
	case dev.Changed:
		r.Warnf("%s: %s changed", e.Function, strings.Join(e.Paths, ", "))
	case dev.Failed:
		if e.Serving {
			r.Warnf("%v\nkiln: %s keeps serving the last good version", e.Err, e.Function)
		} else {
			r.Warnf("%v\nkiln: %s waits for a change that fixes it", e.Err, e.Function)
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
		r.Warnf("%s: rebuilt layers: %s", e.Function, strings.Join(rebuilt, ", "))
	case dev.Live:
		r.Warnf("%s: edit → ready in %d ms", e.Function, e.Took.Milliseconds())
	}
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
