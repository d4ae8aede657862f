package dev

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/project"
)

// Loop rebuilds a function when its handler folder changes and makes the
// new image live; a failed build or deploy leaves the last good version
// serving.
type Loop struct {
	p        *project.Project
	targets  map[string]project.Target
	order    []string
	out      project.Output
	to       project.Deployer
	images   map[string]project.Image
	progress project.Progress
	watch    []Option
}

// LoopOption configures a Loop.
type LoopOption func(*Loop)

// WithProgress sets the callback that receives the loop's events, and the
// project's while it rebuilds. Default: none.
func WithProgress(p project.Progress) LoopOption { return func(l *Loop) { l.progress = p } }

// WithWatchOptions passes options to Watch. Default none.
func WithWatchOptions(opts ...Option) LoopOption {
	return func(l *Loop) { l.watch = append(l.watch, opts...) }
}

// NewLoop returns a loop over the built targets of sb: each rebuild is
// published to out and deployed with to, and sb.Images follows it.
func NewLoop(p *project.Project, sb *project.StackBuild, out project.Output, to project.Deployer, opts ...LoopOption) *Loop {
	l := &Loop{p: p, targets: map[string]project.Target{}, out: out, to: to, images: sb.Images}
	for _, t := range sb.Targets {
		l.targets[t.Function.Name] = t
		l.order = append(l.order, t.Function.Name)
	}
	for _, opt := range opts {
		opt(l)
	}
	return l
}

func (l *Loop) emit(e project.Event) {
	if l.progress != nil {
		l.progress(e)
	}
}

// Run watches until ctx is done. Changes are handled one at a time.
func (l *Loop) Run(ctx context.Context) error {
	dirs := map[string]string{}
	for n, t := range l.targets {
		dirs[n] = t.Function.Dir
	}
	changes, err := Watch(ctx, dirs, l.watch...)
	if err != nil {
		return err
	}
	l.emit(Watching{Functions: l.order})
	for c := range changes {
		l.emit(Changed{Function: c.Function, Paths: c.Paths})
		r, err := l.p.BuildOne(ctx, l.targets[c.Function], l.out)
		if err != nil {
			l.emit(Failed{Function: c.Function, Err: err})
			continue
		}
		l.emit(Rebuilt{Function: c.Function, Layers: r.Layers})
		l.images[c.Function] = project.Image{Ref: r.Image, FProcess: r.FProcess}
		if err := l.to.Deploy(ctx, []string{c.Function}, l.images); err != nil {
			l.emit(Failed{Function: c.Function, Err: err})
			continue
		}
		l.emit(Live{Function: c.Function, Took: time.Since(c.First)})
	}
	return nil
}

// Watching: the loop watches these functions' folders.
type Watching struct{ Functions []string }

// Changed: a function's folder changed.
type Changed struct {
	Function string
	Paths    []string
}

// Rebuilt: a function was rebuilt; Layers say which were not cached.
type Rebuilt struct {
	Function string
	Layers   []builder.LayerReport
}

// Failed: a rebuild or its deploy failed; the last good version serves.
type Failed struct {
	Function string
	Err      error
}

// MarshalJSON gives the error's message, which an error value lacks.
func (f Failed) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Function, Err string }{f.Function, f.Err.Error()})
}

// Live: the new version serves, Took after the first change was seen.
type Live struct {
	Function string
	Took     time.Duration
}

func (Watching) EventKind() string { return "watching" }
func (Changed) EventKind() string  { return "changed" }
func (Rebuilt) EventKind() string  { return "rebuilt" }
func (Failed) EventKind() string   { return "failed" }
func (Live) EventKind() string     { return "live" }
