package dockerfile

import (
	"archive/tar"
	"bytes"
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
// every entry's header, made from the layers' indexes, and the content of
// the regular files fetched so far (and those the indexes inline), written
// under dir.
type stageFS struct {
	dir     string
	entries map[string]*fsEntry
	// applied counts the layers read so far.
	applied int
	files   int
}

type fsEntry struct {
	hdr *tar.Header
	// content is the host file holding a fetched regular file's bytes.
	content string
	layer   int
	// from and name locate a regular file's bytes: the layer whose tar
	// holds them (a hard link's are its target's) under that name.
	from int
	name string
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

func newStageFS(dir string) *stageFS {
	return &stageFS{dir: dir, entries: map[string]*fsEntry{}}
}

// apply adds the layers past the ones already applied, from their
// indexes; diffIDs are the layers' diff IDs.
func (fsys *stageFS) apply(ctx context.Context, x *layerIndexes, ls []v1.Layer, diffIDs []v1.Hash) error {
	if len(diffIDs) != len(ls) {
		return fmt.Errorf("%d layers and %d diff IDs", len(ls), len(diffIDs))
	}
	ixs, err := x.getAll(ctx, ls[fsys.applied:], diffIDs[fsys.applied:])
	if err != nil {
		return err
	}
	for _, ix := range ixs {
		if err := fsys.applyIndex(ix, fsys.applied); err != nil {
			return fmt.Errorf("layer %d: %w", fsys.applied, err)
		}
		fsys.applied++
	}
	return nil
}

func (fsys *stageFS) applyIndex(ix *layerIndex, n int) error {
	for _, ie := range ix.Entries {
		p := cleanName(ie.Name)
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
		hdr := ie.header()
		e := &fsEntry{hdr: hdr, layer: n}
		switch hdr.Typeflag {
		case tar.TypeLink:
			if t, ok := fsys.entries[cleanName(hdr.Linkname)]; ok {
				h := *t.hdr
				h.Name = hdr.Name
				e = &fsEntry{hdr: &h, content: t.content, layer: n, from: t.from, name: t.name}
			}
		case tar.TypeReg:
			e.from, e.name = n, p
			if inlined(p) && hdr.Size <= maxInlined {
				if err := fsys.keep(e, bytes.NewReader(ie.Data)); err != nil {
					return err
				}
			}
		}
		if old, ok := fsys.entries[p]; ok && old.hdr.Typeflag == tar.TypeDir && hdr.Typeflag != tar.TypeDir {
			fsys.remove(p)
		}
		fsys.entries[p] = e
	}
	return nil
}

// keep writes a regular file's bytes under dir as e's content.
func (fsys *stageFS) keep(e *fsEntry, r io.Reader) error {
	fsys.files++
	name := filepath.Join(fsys.dir, strconv.Itoa(fsys.files))
	if err := writeFile(name, r); err != nil {
		return err
	}
	e.content = name
	return nil
}

// fetch reads the content of the regular files want matches from the
// layers ls that hold them, and only those layers.
func (fsys *stageFS) fetch(ctx context.Context, ls []v1.Layer, want func(p string) bool) error {
	need := map[int]map[string][]*fsEntry{}
	for p, e := range fsys.entries {
		if e.hdr.Typeflag != tar.TypeReg || e.content != "" || e.name == "" || !want(p) {
			continue
		}
		if need[e.from] == nil {
			need[e.from] = map[string][]*fsEntry{}
		}
		need[e.from][e.name] = append(need[e.from][e.name], e)
	}
	for n, names := range need {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n >= len(ls) {
			return fmt.Errorf("layer %d: not among the %d layers read", n, len(ls))
		}
		if err := fsys.fetchLayer(ls[n], n, names); err != nil {
			return err
		}
	}
	return nil
}

func (fsys *stageFS) fetchLayer(l v1.Layer, n int, names map[string][]*fsEntry) error {
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
		es, ok := names[cleanName(hdr.Name)]
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		// A name the tar holds twice takes its last bytes, as the
		// index took its last header.
		if err := fsys.keep(es[0], tr); err != nil {
			return err
		}
		for _, e := range es[1:] {
			e.content = es[0].content
		}
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
		st.fs = newStageFS(dir)
	}
	if err := st.fs.apply(ctx, st.b.indexes, st.layers, st.diffIDs); err != nil {
		return nil, err
	}
	return st.fs, nil
}
