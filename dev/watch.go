package dev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Change is a settled change to what one function's build reads.
type Change struct {
	// Function is the function's name.
	Function string
	// Paths are the changed files, relative to the handler folder
	// ("../lib/lib.go" for one outside it), sorted.
	Paths []string
	// First is when the first event of the change arrived: edit → ready
	// latencies are measured from it.
	First time.Time
}

// Option configures Watch.
type Option func(*options)

type options struct {
	debounce time.Duration
}

// WithDebounce sets how long a function's files must be quiet before
// their change is reported. Default: 100ms.
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

// Watcher watches functions' handler folders, and the files and folders
// outside them that their builds read (SetOutside), and reports a Change
// per function once its files have settled.
type Watcher struct {
	fs      *fsnotify.Watcher
	dirs    map[string]string
	changes chan Change

	mu sync.Mutex
	// handlers are the handler folders, deepest first: the deepest one
	// that holds a path owns it.
	handlers []*tree
	// outside holds, per function, what its last build read outside its
	// folder; named are the trees they make, each with every function
	// that named it.
	outside map[string][]string
	named   []*tree
	// watched are the folders fsnotify watches.
	watched map[string]bool
}

// tree is a watched file or folder and the functions an edit in it
// rebuilds.
type tree struct {
	root string
	// file: root is a file, whose folder is watched for it alone.
	file   bool
	ignore *gitignore
	funcs  []string
}

// Watch watches each function's handler folder (name → absolute folder)
// until ctx is done, when the Changes channel is closed.
func Watch(ctx context.Context, dirs map[string]string, opts ...Option) (*Watcher, error) {
	o := options{debounce: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching handler folders: %w", err)
	}
	w := &Watcher{fs: fw, dirs: map[string]string{}, changes: make(chan Change), outside: map[string][]string{}, watched: map[string]bool{}}
	for name, root := range dirs {
		root = filepath.Clean(root)
		w.dirs[name] = root
		w.handlers = append(w.handlers, &tree{root: root, ignore: readGitignore(root), funcs: []string{name}})
	}
	sort.Slice(w.handlers, func(i, j int) bool { return len(w.handlers[i].root) > len(w.handlers[j].root) })
	if err := w.sync(); err != nil {
		fw.Close()
		return nil, err
	}
	go w.loop(ctx, o.debounce)
	return w, nil
}

// Changes returns the channel of settled changes.
func (w *Watcher) Changes() <-chan Change { return w.changes }

// SetOutside sets the files and folders outside function's handler folder
// that its build read (project.Result.Outside): an edit there, under the
// rules of the handler folder, is a change of function, as of every other
// function that named it. Those it named before and no longer does are
// no longer watched for it. An error names what could not be watched; the
// rest is.
func (w *Watcher) SetOutside(function string, paths []string) error {
	paths = slices.Compact(slices.Sorted(slices.Values(paths)))
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Equal(w.outside[function], paths) {
		return nil
	}
	if len(paths) == 0 {
		delete(w.outside, function)
	} else {
		w.outside[function] = paths
	}
	byRoot := map[string]*tree{}
	w.named = nil
	for _, fn := range slices.Sorted(maps.Keys(w.outside)) {
		for _, p := range w.outside[fn] {
			t := byRoot[p]
			if t == nil {
				info, err := os.Lstat(p)
				t = &tree{root: p, file: err != nil || !info.IsDir()}
				if !t.file {
					t.ignore = readGitignore(p)
				}
				byRoot[p] = t
				w.named = append(w.named, t)
			}
			t.funcs = append(t.funcs, fn)
		}
	}
	return w.sync()
}

// sync makes fsnotify watch the folders of every tree, and no others.
// Called with mu held.
func (w *Watcher) sync() error {
	want := map[string]bool{}
	var errs []error
	for _, t := range slices.Concat(w.handlers, w.named) {
		if err := t.folders(want); err != nil {
			errs = append(errs, err)
		}
	}
	for d := range w.watched {
		if !want[d] {
			// A folder that is gone is no longer watched anyway.
			_ = w.fs.Remove(d)
			delete(w.watched, d)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(want)) {
		if err := w.add(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Watcher) add(dir string) error {
	if err := w.fs.Add(dir); err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	w.watched[dir] = true
	return nil
}

// folders adds to want the folders that watch t: the folder of a file,
// or every folder of a folder that is not ignored.
func (t *tree) folders(want map[string]bool) error {
	if t.file {
		want[filepath.Dir(t.root)] = true
		return nil
	}
	return t.walk(t.root, func(dir string) { want[dir] = true })
}

// walk calls fn for dir and every folder under it that t does not
// ignore.
func (t *tree) walk(dir string, fn func(dir string)) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return fmt.Errorf("watching %s: %w", p, err)
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if p != t.root && t.ignored(p, true) {
			return filepath.SkipDir
		}
		fn(p)
		return nil
	})
}

func (t *tree) ignored(p string, isDir bool) bool {
	rel, err := filepath.Rel(t.root, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return rel != "."
	}
	rel = filepath.ToSlash(rel)
	for _, part := range strings.Split(rel, "/")[:strings.Count(rel, "/")] {
		if ignoredName(part, true) {
			return true
		}
	}
	if ignoredName(filepath.Base(p), isDir) {
		return true
	}
	return t.ignore.match(rel, isDir)
}

func (t *tree) owns(p string) bool {
	return p == t.root || !t.file && strings.HasPrefix(p, t.root+string(filepath.Separator))
}

// event returns the functions an event on p changes, and watches the
// folder p when it is a new one of theirs. Called with mu held.
func (w *Watcher) event(ctx context.Context, p string, isDir, created bool) []string {
	var hit []*tree
	for _, t := range w.handlers {
		if t.owns(p) {
			if !t.ignored(p, isDir) {
				hit = append(hit, t)
			}
			break
		}
	}
	for _, t := range w.named {
		if t.owns(p) && !t.ignored(p, isDir) {
			hit = append(hit, t)
		}
	}
	var funcs []string
	for _, t := range hit {
		if isDir && created && !t.file {
			if err := t.walk(p, func(dir string) {
				if err := w.add(dir); err != nil {
					slog.WarnContext(ctx, "watching a new folder", "error", err)
				}
			}); err != nil {
				slog.WarnContext(ctx, "watching a new folder", "error", err)
			}
		}
		if !t.file && p == filepath.Join(t.root, ".gitignore") {
			t.ignore = readGitignore(t.root)
		}
		funcs = append(funcs, t.funcs...)
	}
	return funcs
}

type pending struct {
	first, last time.Time
	paths       map[string]bool
}

func (w *Watcher) loop(ctx context.Context, debounce time.Duration) {
	defer close(w.changes)
	defer w.fs.Close()
	waiting := map[string]*pending{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			slog.WarnContext(ctx, "watching handler folders", "error", err)
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			info, statErr := os.Lstat(ev.Name)
			isDir := statErr == nil && info.IsDir()
			w.mu.Lock()
			funcs := w.event(ctx, ev.Name, isDir, ev.Has(fsnotify.Create))
			w.mu.Unlock()
			now := time.Now()
			for _, fn := range funcs {
				p := waiting[fn]
				if p == nil {
					p = &pending{first: now, paths: map[string]bool{}}
					waiting[fn] = p
				}
				p.last = now
				rel, _ := filepath.Rel(w.dirs[fn], ev.Name)
				p.paths[filepath.ToSlash(rel)] = true
			}
			if len(funcs) > 0 {
				timer.Reset(debounce)
			}
		case <-timer.C:
			now := time.Now()
			var next time.Duration
			for _, fn := range slices.Sorted(maps.Keys(waiting)) {
				p := waiting[fn]
				if wait := debounce - now.Sub(p.last); wait > 0 {
					if next == 0 || wait < next {
						next = wait
					}
					continue
				}
				delete(waiting, fn)
				var paths []string
				for k := range p.paths {
					paths = append(paths, k)
				}
				sort.Strings(paths)
				select {
				case w.changes <- Change{Function: fn, Paths: paths, First: p.first}:
				case <-ctx.Done():
					return
				}
			}
			if next > 0 {
				timer.Reset(next)
			}
		}
	}
}
