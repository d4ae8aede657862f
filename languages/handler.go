package languages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/layers"
)

// credentialFiles are the package managers' configuration files that may
// hold registry tokens. A pack passes them to its install step; no layer
// carries them.
var credentialFiles = map[string]bool{".npmrc": true, "pip.conf": true, ".pypirc": true, "settings.xml": true}

// IsCredentials reports whether rel, a slash-separated path in the handler
// folder, names a package manager's configuration, which may hold a
// registry token and never goes into a layer.
func IsCredentials(rel string) bool { return credentialFiles[path.Base(rel)] }

// HandlerFiles lists the handler folder dir as layer entries under dest:
// layers.FromDir without what skip leaves out and without credentials
// files (IsCredentials). Symlinks that stay in the folder are kept as
// links; one that leaves it (an absolute target, or a relative one that
// climbs out) is a *SourceError, since the tools that read the folder
// would follow it to host files that neither the image nor the cache key
// hold. Files outside the folder come in only through a manifest that
// names them (go.mod's replace, npm's file:, pip's -r).
func HandlerFiles(dir, dest string, skip func(rel string, d fs.DirEntry) bool) ([]layers.File, error) {
	files, err := layers.FromDir(dir, dest, layers.WithSkip(func(rel string, d fs.DirEntry) bool {
		if !d.IsDir() && IsCredentials(rel) {
			return true
		}
		return skip != nil && skip(rel, d)
	}))
	if err != nil {
		return nil, err
	}
	prefix := strings.Trim(filepath.ToSlash(dest), "/")
	for _, f := range files {
		if f.Mode&fs.ModeSymlink == 0 {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f.Path, prefix), "/")
		if leaves(rel, f.Linkname) {
			return nil, &SourceError{Path: filepath.Join(dir, filepath.FromSlash(rel)), Reason: outsideReason(f.Linkname)}
		}
	}
	return files, nil
}

// leaves reports whether the link at rel (slash-separated, relative to the
// folder) with target points outside the folder. Checking each link of the
// folder this way, without following any, keeps chains of links inside.
func leaves(rel, target string) bool {
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return true
	}
	p := path.Join(path.Dir(rel), filepath.ToSlash(target))
	return p == ".." || strings.HasPrefix(p, "../")
}

func outsideReason(target string) string {
	return fmt.Sprintf("is a symlink to %s, outside the handler folder; kiln does not follow it: copy the file in, or name it in the manifest (go.mod replace, package.json file:, requirements.txt -r)", target)
}

// ReadManifest reads the file name in the handler folder dir, such as
// package.json or requirements.txt. A symlink is followed only while it
// stays in the folder: one that leaves it is a *SourceError, and its
// target is never read. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadManifest(dir, name string) ([]byte, error) {
	p, err := ManifestPath(dir, name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// ManifestPath returns the path of the file name in the handler folder
// dir, for a tool to read, after checking as ReadManifest does that it
// does not lead out of the folder.
func ManifestPath(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	info, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		return p, nil
	}
	target, err := os.Readlink(p)
	if err != nil {
		return "", err
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is a dangling symlink: %w", p, err)
	}
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(realDir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", &SourceError{Path: p, Reason: outsideReason(target)}
	}
	return p, nil
}
