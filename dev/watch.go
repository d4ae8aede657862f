package dev

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Change is a settled change to one function's handler folder.
type Change struct {
	// Function is the function's name.
	Function string
	// Paths are the changed files, relative to the handler folder, sorted.
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

// WithDebounce sets how long a folder must be quiet before its change is
// reported. Default: 100ms.
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

type folder struct {
	name   string
	root   string
	ignore *gitignore
}

// Watch watches each function's handler folder (name → absolute folder)
// and sends a Change per function once its folder has settled. The channel
// is closed when ctx is done.
func Watch(ctx context.Context, dirs map[string]string, opts ...Option) (<-chan Change, error) {
	o := options{debounce: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching handler folders: %w", err)
	}
	var folders []*folder
	for name, root := range dirs {
		f := &folder{name: name, root: filepath.Clean(root), ignore: readGitignore(root)}
		folders = append(folders, f)
		if err := f.addTree(w, f.root); err != nil {
			w.Close()
			return nil, err
		}
	}
	// Nested handler folders: the deepest root owns a path.
	sort.Slice(folders, func(i, j int) bool { return len(folders[i].root) > len(folders[j].root) })
	out := make(chan Change)
	go loop(ctx, w, folders, o.debounce, out)
	return out, nil
}

// addTree watches dir and every folder under it that is not ignored.
func (f *folder) addTree(w *fsnotify.Watcher, dir string) error {
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
		if p != f.root && f.ignored(p, true) {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watching %s: %w", p, err)
		}
		return nil
	})
}

func (f *folder) ignored(p string, isDir bool) bool {
	rel, err := filepath.Rel(f.root, p)
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
	return f.ignore.match(rel, isDir)
}

func (f *folder) owns(p string) bool {
	return p == f.root || strings.HasPrefix(p, f.root+string(filepath.Separator))
}

type pending struct {
	first, last time.Time
	paths       map[string]bool
}

func loop(ctx context.Context, w *fsnotify.Watcher, folders []*folder, debounce time.Duration, out chan<- Change) {
	defer close(out)
	defer w.Close()
	waiting := map[*folder]*pending{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			slog.WarnContext(ctx, "watching handler folders", "error", err)
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			var f *folder
			for _, c := range folders {
				if c.owns(ev.Name) {
					f = c
					break
				}
			}
			if f == nil {
				continue
			}
			info, statErr := os.Lstat(ev.Name)
			isDir := statErr == nil && info.IsDir()
			if f.ignored(ev.Name, isDir) {
				continue
			}
			if isDir && ev.Has(fsnotify.Create) {
				f.addTree(w, ev.Name)
			}
			if ev.Name == filepath.Join(f.root, ".gitignore") {
				f.ignore = readGitignore(f.root)
			}
			now := time.Now()
			p := waiting[f]
			if p == nil {
				p = &pending{first: now, paths: map[string]bool{}}
				waiting[f] = p
			}
			p.last = now
			rel, _ := filepath.Rel(f.root, ev.Name)
			p.paths[filepath.ToSlash(rel)] = true
			timer.Reset(debounce)
		case <-timer.C:
			now := time.Now()
			var next time.Duration
			for f, p := range waiting {
				if wait := debounce - now.Sub(p.last); wait > 0 {
					if next == 0 || wait < next {
						next = wait
					}
					continue
				}
				delete(waiting, f)
				var paths []string
				for k := range p.paths {
					paths = append(paths, k)
				}
				sort.Strings(paths)
				select {
				case out <- Change{Function: f.name, Paths: paths, First: p.first}:
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
