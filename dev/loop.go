package dev

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/project"
)

// Loop builds a stack's functions and makes them live, then rebuilds a
// function when its handler folder changes and makes the new image live.
// A function whose build fails, the first time or later, is reported and
// waits for the next change; the last good version, if any, keeps serving.
type Loop struct {
	p        *project.Project
	st       *project.Stack
	targets  []project.Target
	out      project.Output
	to       project.Deployer
	parallel int
	progress project.Progress
	watch    []Option
}

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
// others, skip_build ones, are deployed by their stack image): each build
// is published to out and deployed with to.
func NewLoop(p *project.Project, st *project.Stack, targets []project.Target, out project.Output, to project.Deployer, opts ...LoopOption) *Loop {
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
	images, err := l.first(ctx)
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
	changes, err := Watch(ctx, dirs, l.watch...)
	if err != nil {
		return err
	}
	l.emit(Watching{Functions: names})
	for c := range changes {
		l.emit(Changed{Function: c.Function, Paths: c.Paths})
		r, err := l.p.BuildOne(ctx, byName[c.Function], l.out)
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

// first builds every target and deploys what built, with the functions
// that are not built; a function that did not build is reported and waits
// for a change.
func (l *Loop) first(ctx context.Context) (map[string]project.Image, error) {
	results, errs, err := l.p.BuildEach(ctx, l.targets, l.out, l.parallel)
	if err != nil {
		return nil, err
	}
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
