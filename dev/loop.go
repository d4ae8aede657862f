package dev

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/project"
)

// Loop builds a stack's functions and makes them live, then rebuilds a
// function when its handler folder changes, or a file or folder outside
// it that its last build read (a Go replace, npm file:, pip -r,
// configuration.copy), and makes the new image live.
// A function whose build fails, the first time or later, is reported and
// waits for the next change; the last good version, if any, keeps serving.
type Loop struct {
	p        Builder
	st       *project.Stack
	targets  []project.Target
	out      project.Output
	to       project.Deployer
	parallel int
	progress project.Progress
	watch    []Option
}

// Builder builds a stack's targets and publishes them, as
// *project.Project does.
type Builder interface {
	BuildEach(ctx context.Context, targets []project.Target, out project.Output, parallel int) ([]project.Result, []error, error)
	BuildOne(ctx context.Context, t project.Target, out project.Output) (project.Result, error)
}

var _ Builder = (*project.Project)(nil)

// LoopOption configures a Loop.
type LoopOption func(*Loop)

// WithProgress sets the callback that receives the loop's events. Default:
// none.
func WithProgress(p project.Progress) LoopOption { return func(l *Loop) { l.progress = p } }

// WithParallel sets how many functions the first build builds at once.
// Default 1.
func WithParallel(n int) LoopOption { return func(l *Loop) { l.parallel = n } }

// WithWatchOptions passes options to Watch. Default none.
func WithWatchOptions(opts ...Option) LoopOption {
	return func(l *Loop) { l.watch = append(l.watch, opts...) }
}

// NewLoop returns a loop over the targets of st's selected functions (the
// others, skip_build ones, are deployed by their stack image): each
// target is built by p into out and deployed with to.
func NewLoop(p Builder, st *project.Stack, targets []project.Target, out project.Output, to project.Deployer, opts ...LoopOption) *Loop {
	l := &Loop{p: p, st: st, targets: targets, out: out, to: to, parallel: 1}
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

// Run builds and deploys every function, then watches until ctx is done.
// Changes are handled one at a time. It returns an error only when the
// first deploy fails or the folders cannot be watched.
func (l *Loop) Run(ctx context.Context) error {
	results, errs, err := l.p.BuildEach(ctx, l.targets, l.out, l.parallel)
	if err != nil {
		return err
	}
	images, err := l.first(ctx, results, errs)
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	byName := map[string]project.Target{}
	var names []string
	for _, t := range l.targets {
		dirs[t.Function.Name] = t.Function.Dir
		byName[t.Function.Name] = t
		names = append(names, t.Function.Name)
	}
	w, err := Watch(ctx, dirs, l.watch...)
	if err != nil {
		return err
	}
	read := map[string][]string{}
	for i, t := range l.targets {
		watchOutside(ctx, w, read, t.Function.Name, results[i].Outside, errs[i] == nil)
	}
	l.emit(Watching{Functions: names})
	for c := range w.Changes() {
		l.emit(Changed{Function: c.Function, Paths: c.Paths})
		r, err := l.p.BuildOne(ctx, byName[c.Function], l.out)
		watchOutside(ctx, w, read, c.Function, r.Outside, err == nil)
		if err != nil {
			l.emit(Failed{Function: c.Function, Err: err, Serving: images[c.Function].Ref != ""})
			continue
		}
		l.emit(Rebuilt{Function: c.Function, Layers: r.Layers})
		images[c.Function] = project.Image{Ref: r.Image, FProcess: r.FProcess}
		if err := l.to.Deploy(ctx, []string{c.Function}, images); err != nil {
			l.emit(Failed{Function: c.Function, Err: err, Serving: true})
			continue
		}
		l.emit(Live{Function: c.Function, Took: time.Since(c.First)})
	}
	return nil
}

// watchOutside has w watch what a build of function read outside its
// handler folder; read holds, per function, what its last good build
// read. A failed build may have stopped before it knew all of it, so what
// the last good one read stays watched beside it.
func watchOutside(ctx context.Context, w *Watcher, read map[string][]string, function string, outside []string, ok bool) {
	if ok {
		read[function] = outside
	} else {
		outside = append(slices.Clone(read[function]), outside...)
	}
	if err := w.SetOutside(function, outside); err != nil {
		slog.WarnContext(ctx, "watching what a build read outside its folder", "function", function, "error", err)
	}
}

// first deploys what the first build built, with the functions that are
// not built; a function that did not build is reported and waits for a
// change.
func (l *Loop) first(ctx context.Context, results []project.Result, errs []error) (map[string]project.Image, error) {
	images := map[string]project.Image{}
	built := map[string]bool{}
	for i, t := range l.targets {
		built[t.Function.Name] = errs[i] == nil
		if errs[i] != nil {
			l.emit(Failed{Function: t.Function.Name, Err: errs[i]})
			continue
		}
		images[t.Function.Name] = project.Image{Ref: results[i].Image, FProcess: results[i].FProcess}
	}
	var live []string
	for _, n := range l.st.Names {
		if ok, isTarget := built[n]; ok || !isTarget {
			live = append(live, n)
		}
	}
	if err := project.WithStackImages(ctx, l.st, images); err != nil {
		return nil, err
	}
	for n, ok := range built {
		if !ok {
			delete(images, n)
		}
	}
	if len(live) == 0 {
		return images, nil
	}
	return images, l.to.Deploy(ctx, live, images)
}

// Watching: the loop watches these functions' folders.
type Watching struct{ Functions []string }

// Changed: what a function's build reads changed.
type Changed struct {
	Function string
	Paths    []string
}

// Rebuilt: a function was rebuilt; Layers say which were not cached.
type Rebuilt struct {
	Function string
	Layers   []builder.LayerReport
}

// Failed: a build or its deploy failed. Serving says whether an earlier
// version keeps serving; either way the function waits for a change.
type Failed struct {
	Function string
	Err      error
	Serving  bool
}

// MarshalJSON gives the error's message, which an error value lacks.
func (f Failed) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Function, Err string
		Serving       bool
	}{f.Function, f.Err.Error(), f.Serving})
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
