package dockerfile

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// stageFS is what a stack of layers holds, seen through its whiteouts:
// every entry's header, and the content of the regular files it was
// asked to keep, written under dir.
type stageFS struct {
	dir     string
	want    func(p string) bool
	entries map[string]*fsEntry
	// applied counts the layers read so far.
	applied int
	files   int
}

type fsEntry struct {
	hdr *tar.Header
	// content is the host file holding a kept regular file's bytes.
	content string
	layer   int
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

func newStageFS(dir string, want func(p string) bool) *stageFS {
	return &stageFS{dir: dir, want: want, entries: map[string]*fsEntry{}}
}

// apply reads the layers past the ones already applied.
func (fsys *stageFS) apply(ctx context.Context, ls []v1.Layer) error {
	for ; fsys.applied < len(ls); fsys.applied++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fsys.applyLayer(ls[fsys.applied], fsys.applied); err != nil {
			return err
		}
	}
	return nil
}

func (fsys *stageFS) applyLayer(l v1.Layer, n int) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("reading layer %d: %w", n, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading layer %d: %w", n, err)
		}
		p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if p == "" {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == opaqueMarker:
			fsys.removeBelow(dir, n)
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			fsys.remove(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
			continue
		}
		e := &fsEntry{hdr: hdr, layer: n}
		switch hdr.Typeflag {
		case tar.TypeLink:
			target := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			if t, ok := fsys.entries[target]; ok {
				h := *t.hdr
				h.Name = hdr.Name
				e = &fsEntry{hdr: &h, content: t.content, layer: n}
			}
		case tar.TypeReg:
			if fsys.want != nil && fsys.want(p) {
				fsys.files++
				e.content = filepath.Join(fsys.dir, strconv.Itoa(fsys.files))
				if err := writeFile(e.content, tr); err != nil {
					return err
				}
			}
		}
		if old, ok := fsys.entries[p]; ok && old.hdr.Typeflag == tar.TypeDir && hdr.Typeflag != tar.TypeDir {
			fsys.remove(p)
		}
		fsys.entries[p] = e
	}
}

func writeFile(name string, r io.Reader) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// remove deletes p and everything below it.
func (fsys *stageFS) remove(p string) {
	delete(fsys.entries, p)
	fsys.removeBelow(p, -1)
}

// removeBelow deletes what lower layers than n put below dir (all layers
// when n is -1).
func (fsys *stageFS) removeBelow(dir string, n int) {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	for p, e := range fsys.entries {
		if strings.HasPrefix(p, prefix) && p != dir && (n < 0 || e.layer < n) {
			delete(fsys.entries, p)
		}
	}
}

// resolve follows the symlinks on the way to p (and p itself when follow
// is true), as the kernel would inside the image's root, and returns the
// path reached, which may not exist.
func (fsys *stageFS) resolve(p string, follow bool) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := ""
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		if part == "" || part == "." {
			continue
		}
		next := path.Join(cur, part)
		if part == ".." {
			cur = strings.TrimPrefix(path.Dir("/"+cur), "/")
			continue
		}
		e, ok := fsys.entries[next]
		if !ok || e.hdr.Typeflag != tar.TypeSymlink || (len(parts) == 0 && !follow) {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("/%s: too many levels of symbolic links", p)
		}
		target := e.hdr.Linkname
		if path.IsAbs(target) {
			cur = ""
		}
		parts = append(strings.Split(strings.Trim(target, "/"), "/"), parts...)
	}
	return cur, nil
}

// get returns the entry at p (no leading slash), following no links.
func (fsys *stageFS) get(p string) (*fsEntry, bool) {
	e, ok := fsys.entries[p]
	return e, ok
}

// read returns the content of the kept file at p.
func (fsys *stageFS) read(p string) ([]byte, bool) {
	e, ok := fsys.entries[p]
	if !ok || e.content == "" {
		return nil, false
	}
	b, err := os.ReadFile(e.content)
	return b, err == nil
}

// view returns the stage's filesystem: every header, and the content of
// /etc/passwd and /etc/group, for names in --chown and USER. It is kept
// and brought up to date as layers are added.
func (st *stage) view(ctx context.Context) (*stageFS, error) {
	if st.fs == nil {
		dir, err := os.MkdirTemp(st.b.scratch, "fs-")
		if err != nil {
			return nil, err
		}
		st.fs = newStageFS(dir, func(p string) bool { return p == "etc/passwd" || p == "etc/group" })
	}
	if err := st.fs.apply(ctx, st.layers); err != nil {
		return nil, err
	}
	return st.fs, nil
}
