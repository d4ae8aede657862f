package languages

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/layers"
)

// Named is a file or folder a manifest names by a relative path: a go.mod
// replace, a package.json file: dependency, a requirements file's -r
// include or local project. It is the one way a build reads files outside
// the handler folder, and they are read as named, never through a link.
type Named struct {
	// Manifest is the file that names it; Line its line there, 0 when
	// unknown.
	Manifest string
	Line     int
	// Label says how the manifest names it, for messages: "replace =>
	// ../lib".
	Label string
	// Path is where it is on the host.
	Path string
	// Rel is where it is relative to the handler folder, slash-separated:
	// "../lib", or "deps/base.txt" inside it. Stage puts it there.
	Rel string
}

// Name resolves written, a path a manifest of fn names relative to the
// folder base, as the tools do: lexically, so "../lib" from the handler
// folder is its sibling even when the folder is reached through a link.
// label says how the manifest names it. An absolute path is a
// *SourceError: it names this machine's files, which a build elsewhere
// lacks. So is a path that passes through a symlink on its way from the
// handler folder, or its parent, to what it names: the link could lead
// anywhere on the host. When fn.Dir is a staged copy (fn.Origin), paths
// out of it are resolved from the user's folder.
func Name(fn Function, manifest string, line int, label, base, written string) (Named, error) {
	n := Named{Manifest: manifest, Line: line, Label: label}
	if written == "" {
		return n, n.errorf("names no path")
	}
	if filepath.IsAbs(written) || path.IsAbs(filepath.ToSlash(written)) {
		return n, n.errorf("an absolute path names this machine's files; name it relative to %s", filepath.Base(manifest))
	}
	p := filepath.Join(base, filepath.FromSlash(written))
	rel, err := filepath.Rel(fn.Dir, p)
	if err != nil {
		return n, n.errorf("%v", err)
	}
	dir := fn.Dir
	if climbs(rel) && fn.Origin != "" && !climbsFrom(fn.Dir, base) {
		dir = fn.Origin
		p = filepath.Join(dir, rel)
	}
	n.Path, n.Rel = p, filepath.ToSlash(rel)
	// Every folder from the one the handler folder and p share down to p
	// is checked, so that no link, inside the folder or out, leads the
	// build somewhere the manifest does not say.
	common := dir
	for climbsFrom(common, p) {
		common = filepath.Dir(common)
	}
	tail, err := filepath.Rel(common, p)
	if err != nil {
		return n, n.errorf("%v", err)
	}
	at := common
	for _, part := range strings.Split(tail, string(filepath.Separator)) {
		if part == "." {
			continue
		}
		at = filepath.Join(at, part)
		info, err := os.Lstat(at)
		if errors.Is(err, fs.ErrNotExist) {
			return n, n.errorf("%s not found", at)
		}
		if err != nil {
			return n, n.errorf("%v", err)
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(at)
			return n, n.errorf("%s is a symlink to %s; kiln reads what a manifest names as named, never through a link: name the real path, relative to %s", at, target, filepath.Base(manifest))
		}
	}
	return n, nil
}

// climbs reports whether rel, a relative path, leaves its folder.
func climbs(rel string) bool {
	return rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// climbsFrom reports whether p is outside the folder dir.
func climbsFrom(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err != nil || climbs(rel)
}

func (n Named) errorf(format string, args ...any) *SourceError {
	return &SourceError{Path: n.Manifest, Line: n.Line, Reason: n.Label + ": " + fmt.Sprintf(format, args...)}
}

// Outside reports whether n is outside the handler folder.
func (n Named) Outside() bool { return climbs(filepath.FromSlash(n.Rel)) }

// IsDir reports whether n names a folder.
func (n Named) IsDir() bool {
	info, err := os.Lstat(n.Path)
	return err == nil && info.IsDir()
}

// Files lists what n names as layer entries placed at n.Rel: a file, or a
// folder's files under HandlerFiles's rule (links leaving it are refused,
// credentials files left out) without what skip leaves out.
func (n Named) Files(skip func(rel string, d fs.DirEntry) bool) ([]layers.File, error) {
	info, err := os.Lstat(n.Path)
	if err != nil {
		return nil, n.errorf("%s not found", n.Path)
	}
	switch {
	case info.IsDir() && n.Rel == ".":
		return HandlerFiles(n.Path, "", skip)
	case info.IsDir():
		files, err := HandlerFiles(n.Path, n.Rel, skip)
		if err != nil {
			return nil, err
		}
		return append([]layers.File{layers.Dir(n.Rel, 0o755)}, files...), nil
	case info.Mode().IsRegular():
		return []layers.File{layers.HostFile(n.Rel, info.Mode().Perm(), n.Path)}, nil
	}
	return nil, n.errorf("%s is neither a file nor a folder", n.Path)
}

// stagedName and stagedUp name the folders Stage makes for the handler
// folder and above it.
const (
	stagedName = "kiln-function"
	stagedUp   = "kiln-up"
)

// StagedDir returns where Stage puts the copy of the handler folder under
// root for files: root itself when no path leaves the folder, else
// root/kiln-function under as many made-up folders as the paths climb, so
// that every ../ resolves inside root and the stage's layout depends on
// the paths alone, never on the names of the user's folders.
func StagedDir(root string, files []layers.File) string {
	depth := 0
	for _, f := range files {
		up := 0
		for p := path.Clean(f.Path); p == ".." || strings.HasPrefix(p, "../"); p = strings.TrimPrefix(strings.TrimPrefix(p, ".."), "/") {
			up++
		}
		depth = max(depth, up)
	}
	if depth == 0 {
		return root
	}
	parts := []string{root}
	for range depth - 1 {
		parts = append(parts, stagedUp)
	}
	return filepath.Join(append(parts, stagedName)...)
}

// Stage writes files, layer entries whose paths are relative to the
// handler folder (a Named path outside it starts with ../), under root at
// StagedDir(root, files), so that a tool reads there what the key covers
// and nothing else of the host. It returns the handler folder's copy.
func Stage(root string, files []layers.File) (string, error) {
	dir := StagedDir(root, files)
	for _, f := range files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if climbs(f.Path) && !climbsFrom(dir, dst) {
			return "", fmt.Errorf("staging %s: it would land in the handler folder's copy, whose made-up name it shares", f.Path)
		}
		if err := stageFile(f, dst); err != nil {
			return "", fmt.Errorf("staging %s: %w", f.Path, err)
		}
	}
	return dir, nil
}

func stageFile(f layers.File, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case f.Mode.IsDir():
		return os.MkdirAll(dst, 0o755)
	case f.Mode&fs.ModeSymlink != 0:
		// A folder named twice (a replace inside another) writes its
		// links twice.
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return os.Symlink(f.Linkname, dst)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, f.Mode.Perm()|0o200)
	if err != nil {
		return err
	}
	if f.Source == "" {
		_, err = out.Write(f.Data)
	} else {
		err = copyFrom(out, f.Source)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func copyFrom(w io.Writer, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(w, in)
	return err
}

// Unstage rewrites the paths in a tool's output that point into a stage,
// absolute or relative to the tool's working folder cwd, to the user's:
// staged is the handler folder's copy (Stage's result), handler the
// user's folder. The made-up folders above the copy stand for the
// handler folder's parents.
func Unstage(out, staged, handler, cwd string) string {
	sep := string(filepath.Separator)
	for {
		if rel, err := filepath.Rel(cwd, staged); err == nil && rel != "." && cwd != "" {
			out = strings.ReplaceAll(out, rel+sep, handler+sep)
		}
		out = strings.ReplaceAll(out, staged+sep, handler+sep)
		if b := filepath.Base(staged); b != stagedName && b != stagedUp {
			return out
		}
		staged, handler = filepath.Dir(staged), filepath.Dir(handler)
	}
}
