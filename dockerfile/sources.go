package dockerfile

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/patternmatcher"

	"github.com/kiln-build/kiln/layers"
)

// sources lists what c copies: from the build context, a URL, or from,
// another stage's or an image's files, and inline heredocs.
func (st *stage) sources(ctx context.Context, c copySpec, from *stageFS) ([]source, error) {
	var out []source
	excludes, err := excludeMatcher(c.excludes)
	if err != nil {
		return nil, err
	}
	for _, src := range c.srcs {
		var ss []source
		var err error
		switch {
		case isGit(src):
			return nil, fmt.Errorf("%s %s: git sources are not supported by kiln", copyName(c), src)
		case isURL(src):
			if !c.add {
				return nil, fmt.Errorf("COPY %s: COPY cannot fetch a URL; ADD can", src)
			}
			var s source
			s, err = st.fetch(ctx, src, c.checksum)
			ss = []source{s}
		case from != nil:
			ss, err = fsSources(from, src, excludes)
		default:
			if c.checksum != "" {
				return nil, fmt.Errorf("ADD --checksum needs an http or https source, not %s", src)
			}
			ss, err = st.b.contextSources(src, excludes)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
	}
	for _, hd := range c.contents {
		out = append(out, source{name: path.Base(hd.Path), files: []layers.File{layers.Bytes(path.Base(hd.Path), 0o644, []byte(hd.Data))}})
	}
	return out, nil
}

// isGit tells a git repository, which BuildKit's ADD clones, from a URL.
func isGit(s string) bool {
	if strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "git://") {
		return true
	}
	u, _, _ := strings.Cut(s, "#")
	return isURL(s) && strings.HasSuffix(u, ".git")
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func excludeMatcher(patterns []string) (*patternmatcher.PatternMatcher, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	return pm, nil
}

func excluded(pm *patternmatcher.PatternMatcher, rel string) bool {
	if pm == nil {
		return false
	}
	ok, _ := pm.MatchesOrParentMatches(rel)
	return ok
}

func hasWildcards(s string) bool {
	return strings.ContainsAny(s, "*?[")
}

// cleanRel turns a source as written into a slash path relative to the
// root it is read from; "" is the root.
func cleanRel(src string) string {
	return strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
}

// contextSources finds src in the build context, leaving out what
// .dockerignore leaves out (paths from the context's root) and what
// --exclude does (paths from the folder copied, or the pattern's folder).
func (b *build) contextSources(src string, excludes *patternmatcher.PatternMatcher) ([]source, error) {
	root := b.opts.Context
	ignored := b.ignored
	rel := cleanRel(src)
	if !hasWildcards(rel) {
		info, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
		if rel != "" && ignored(rel, err == nil && info.IsDir()) {
			return nil, fmt.Errorf("%s: not found in the build context (.dockerignore leaves it out)", src)
		}
		if rel != "" && excluded(excludes, path.Base(rel)) {
			return nil, nil
		}
		s, err := hostSource(root, rel, ignored, excludes)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not found in the build context", src)
		}
		return []source{s}, err
	}
	prefix := literalPrefix(rel)
	var out []source
	err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(prefix)), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		r = filepath.ToSlash(r)
		if r == "." {
			return nil
		}
		if ignored(r, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if ok, _ := path.Match(rel, r); ok {
			if !excluded(excludes, strings.TrimPrefix(r, prefix+"/")) {
				s, err := hostSource(root, r, ignored, excludes)
				if err != nil {
					return err
				}
				out = append(out, s)
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("matching %s in the build context: %w", src, err)
	}
	return out, nil
}

// ignored says whether .dockerignore leaves out rel. A folder is never
// left out whole when a pattern brings back ("!") some of what others
// leave out: its files are tested one by one.
func (b *build) ignored(rel string, dir bool) bool {
	if b.df.ignore == nil || (dir && b.df.ignore.Exclusions()) {
		return false
	}
	return excluded(b.df.ignore, rel)
}

// literalPrefix is the folder part of a pattern before its first wildcard.
func literalPrefix(pattern string) string {
	var dirs []string
	for _, part := range strings.Split(pattern, "/") {
		if hasWildcards(part) {
			break
		}
		dirs = append(dirs, part)
	}
	if len(dirs) == len(strings.Split(pattern, "/")) {
		dirs = dirs[:len(dirs)-1]
	}
	return strings.Join(dirs, "/")
}

// hostSource reads rel under root: a file, or a directory's contents
// without what ignored (from root) or excludes (from the directory) match.
// A named symlink is followed, within root.
func hostSource(root, rel string, ignored func(rel string, dir bool) bool, excludes *patternmatcher.PatternMatcher) (source, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	info, err := os.Lstat(p)
	if err != nil {
		return source{}, err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return source{}, err
		}
		absRoot, err := filepath.EvalSymlinks(root)
		if err != nil {
			return source{}, err
		}
		if r, err := filepath.Rel(absRoot, resolved); err != nil || strings.HasPrefix(r, "..") {
			return source{}, fmt.Errorf("%s: links outside the build context", rel)
		}
		p = resolved
		if info, err = os.Stat(p); err != nil {
			return source{}, err
		}
	}
	name := path.Base("/" + rel)
	if info.IsDir() {
		files, err := layers.FromDir(p, "", layers.WithSkip(func(r string, d fs.DirEntry) bool {
			return ignored(path.Join(rel, r), d.IsDir()) || excluded(excludes, r)
		}))
		if err != nil {
			return source{}, err
		}
		return source{name: name, dir: true, files: files}, nil
	}
	if !info.Mode().IsRegular() {
		return source{}, fmt.Errorf("%s: not a regular file or a directory", rel)
	}
	mode := info.Mode().Perm() | info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	return source{name: name, files: []layers.File{layers.HostFile(name, mode, p)}}, nil
}

// fromLayers returns the layers of the stage or image --from names, and
// their diff IDs.
func (st *stage) fromLayers(ctx context.Context, from string) ([]v1.Layer, []v1.Hash, error) {
	if i, ok := st.b.df.stageIndex(from); ok {
		if i >= st.index {
			return nil, nil, fmt.Errorf("--from=%s names a stage that is not before this one", from)
		}
		src, err := st.b.stage(ctx, i)
		if err != nil {
			return nil, nil, err
		}
		return src.layers, src.diffIDs, nil
	}
	if st.b.opts.Bases == nil {
		return nil, nil, fmt.Errorf("--from=%s: no base image resolver", from)
	}
	img, err := st.b.opts.Bases.Resolve(ctx, from, st.platform)
	if err != nil {
		return nil, nil, fmt.Errorf("--from=%s: %w", from, err)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("--from=%s: %w", from, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("--from=%s: %w", from, err)
	}
	return ls, cf.RootFS.DiffIDs, nil
}

// readFS lists the files of what --from names, from the indexes of its
// layers ls (diff IDs diffIDs), and reads the content of what srcs reach
// from the layers that hold it.
func (st *stage) readFS(ctx context.Context, from string, ls []v1.Layer, diffIDs []v1.Hash, srcs []string) (*stageFS, error) {
	dir, err := os.MkdirTemp(st.b.scratch, "from-")
	if err != nil {
		return nil, err
	}
	fsys := newStageFS(dir)
	if err := fsys.apply(ctx, st.b.indexes, ls, diffIDs); err != nil {
		return nil, fmt.Errorf("--from=%s: %w", from, err)
	}
	prefixes := make([]string, 0, len(srcs))
	for _, s := range srcs {
		rel := cleanRel(s)
		if hasWildcards(rel) {
			prefixes = append(prefixes, literalPrefix(rel))
			continue
		}
		prefixes = append(prefixes, rel)
		// A named source may be a link to elsewhere, which is copied.
		if r, err := fsys.resolve(rel, true); err == nil {
			prefixes = append(prefixes, r)
		}
	}
	if err := fsys.fetch(ctx, ls, func(p string) bool { return underAny(p, prefixes) }); err != nil {
		return nil, fmt.Errorf("--from=%s: %w", from, err)
	}
	return fsys, nil
}

func underAny(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if pre == "" || p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// fsSources finds src in a stage's or an image's filesystem.
func fsSources(fsys *stageFS, src string, excludes *patternmatcher.PatternMatcher) ([]source, error) {
	rel := cleanRel(src)
	if !hasWildcards(rel) {
		r, err := fsys.resolve(rel, true)
		if err != nil {
			return nil, err
		}
		if r != "" {
			if _, ok := fsys.get(r); !ok {
				return nil, fmt.Errorf("%s: not found", src)
			}
		}
		return []source{fsSource(fsys, r, path.Base("/"+rel), excludes)}, nil
	}
	prefix := literalPrefix(rel)
	var names []string
	for p := range fsys.entries {
		if ok, _ := path.Match(rel, p); ok && !excluded(excludes, strings.TrimPrefix(p, prefix+"/")) {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	out := make([]source, len(names))
	for i, p := range names {
		out[i] = fsSource(fsys, p, path.Base(p), excludes)
	}
	return out, nil
}

func fsSource(fsys *stageFS, p, name string, excludes *patternmatcher.PatternMatcher) source {
	if e, ok := fsys.get(p); ok && e.hdr.Typeflag != tar.TypeDir {
		f, _ := fsFile(e, name)
		return source{name: name, files: []layers.File{f}}
	}
	s := source{name: name, dir: true}
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for q, e := range fsys.entries {
		if !strings.HasPrefix(q, prefix) || excluded(excludes, strings.TrimPrefix(q, prefix)) {
			continue
		}
		if f, ok := fsFile(e, strings.TrimPrefix(q, prefix)); ok {
			s.files = append(s.files, f)
		}
	}
	return s
}

// fsFile turns a filesystem entry into a layer entry at p; devices and
// pipes are left out.
func fsFile(e *fsEntry, p string) (layers.File, bool) {
	h := e.hdr
	f := layers.File{Path: p, Mode: fileMode(h.Mode), UID: h.Uid, GID: h.Gid}
	switch h.Typeflag {
	case tar.TypeDir:
		f.Mode |= fs.ModeDir
	case tar.TypeSymlink:
		f.Mode, f.Linkname = fs.ModeSymlink|0o777, h.Linkname
	case tar.TypeReg, tar.TypeLink:
		f.Source = e.content
		if f.Source == "" {
			return f, false
		}
	default:
		return f, false
	}
	return f, true
}
