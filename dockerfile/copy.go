package dockerfile

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/layers"
)

// copySpec is a COPY or an ADD, after expansion.
type copySpec struct {
	add        bool
	srcs       []string
	contents   []instructions.SourceContent
	dest       string
	from       string
	chown      string
	chmod      string
	excludes   []string
	checksum   string
	unpack     *bool
	parents    bool
	keepGitDir *bool
}

func copyFromCopy(c *instructions.CopyCommand) copySpec {
	return copySpec{srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath, from: c.From,
		chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, parents: c.Parents}
}

func copyFromAdd(c *instructions.AddCommand) copySpec {
	return copySpec{add: true, srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
		chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, checksum: c.Checksum, unpack: c.Unpack, keepGitDir: c.KeepGitDir}
}

// createdBy is the history line, as BuildKit writes it (with its mark of
// a layer made by BuildKit's file operations).
func (c copySpec) createdBy() string {
	var b strings.Builder
	if c.add {
		b.WriteString("ADD")
	} else {
		b.WriteString("COPY")
	}
	if c.chown != "" {
		b.WriteString(" --chown=" + c.chown)
	}
	if c.chmod != "" {
		b.WriteString(" --chmod=" + c.chmod)
	}
	for _, s := range c.srcs {
		b.WriteString(" " + s)
	}
	for _, s := range c.contents {
		b.WriteString(" <<" + s.Path)
	}
	b.WriteString(" " + c.dest + " # buildkit")
	return b.String()
}

// source is one thing copied: a file, named by its base name, or the
// contents of a directory.
type source struct {
	name string
	dir  bool
	// fetched marks a download of ADD <url>.
	fetched bool
	// files are the file itself (Path is its name), or what the directory
	// holds, with paths relative to it.
	files []layers.File
}

// copy runs a COPY or an ADD.
func (st *stage) copy(ctx context.Context, c copySpec) error {
	switch {
	case c.parents:
		return errors.New("COPY --parents is not supported by kiln")
	case c.keepGitDir != nil:
		return errors.New("ADD --keep-git-dir is not supported by kiln")
	}
	var mode fs.FileMode
	if c.chmod != "" {
		m, err := strconv.ParseUint(c.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("--chmod=%s: not an octal mode between 0 and 7777", c.chmod)
		}
		mode = fileMode(int64(m))
	}
	createdBy := c.createdBy()
	name := strings.TrimSuffix(createdBy, " # buildkit")
	dest := st.workdirPath(c.dest)
	destIsDir := strings.HasSuffix(c.dest, "/") || c.dest == "." || strings.HasSuffix(c.dest, "/.")
	if c.from != "" {
		return st.copyFrom(ctx, c, name, createdBy, dest, destIsDir, mode)
	}
	srcs, err := st.sources(ctx, c, nil)
	if err != nil {
		return err
	}
	key, err := st.copyKey(c, createdBy, dest, destIsDir, srcs)
	if err != nil {
		return err
	}
	return st.layerStep(ctx, key, name, createdBy, built(func(ctx context.Context, w io.Writer) error {
		files, err := st.placeCopy(ctx, c, srcs, dest, destIsDir, mode)
		if err != nil {
			return err
		}
		return layers.WriteTar(w, files, layers.WithEpoch(st.b.opts.Epoch))
	}))
}

// copyKey is the key of a COPY or ADD by the content of what it copies.
func (st *stage) copyKey(c copySpec, createdBy, dest string, destIsDir bool, srcs []source) (v1.Hash, error) {
	if len(srcs) > 1 && !destIsDir {
		return v1.Hash{}, fmt.Errorf("%s to %s: with more than one source file, the destination must be a directory and end with a /", copyName(c), c.dest)
	}
	k := st.stepKey("copy").String(createdBy).String(dest).Strings(c.excludes...)
	if destIsDir {
		k.String("dir")
	}
	for _, s := range srcs {
		k.String(s.name).String(strconv.FormatBool(s.dir))
		if err := k.Files(s.files); err != nil {
			return v1.Hash{}, fmt.Errorf("hashing %s: %w", s.name, err)
		}
	}
	return k.Sum(), nil
}

// copyFrom runs a COPY --from. Reading a stage's or an image's files to
// learn their content means unpacking its layers, so the step is first
// looked up by the layers it reads from; only when they changed are the
// files read, and the step then hits by their content if they are the
// same (a stage that ran again and wrote the same bytes). The layer is
// stored under both keys.
func (st *stage) copyFrom(ctx context.Context, c copySpec, name, createdBy, dest string, destIsDir bool, mode fs.FileMode) error {
	ls, diffIDs, err := st.fromLayers(ctx, c.from)
	if err != nil {
		return err
	}
	k := st.stepKey("copy-from").String(createdBy).String(dest).Strings(c.excludes...)
	for _, d := range diffIDs {
		k.Hash(d)
	}
	var byContent *v1.Hash
	err = st.layerStep(ctx, k.Sum(), name, createdBy, func(ctx context.Context, w io.Writer) (bool, error) {
		fsys, err := st.readFS(ctx, c.from, ls, diffIDs, c.srcs)
		if err != nil {
			return false, err
		}
		srcs, err := st.sources(ctx, c, fsys)
		if err != nil {
			return false, fmt.Errorf("--from=%s: %w", c.from, err)
		}
		key, err := st.copyKey(c, createdBy, dest, destIsDir, srcs)
		if err != nil {
			return false, err
		}
		if !st.b.opts.NoCache {
			if l, err := st.b.opts.Cache.Get(ctx, key); err == nil {
				return true, copyUncompressed(w, l)
			}
		}
		byContent = &key
		files, err := st.placeCopy(ctx, c, srcs, dest, destIsDir, mode)
		if err != nil {
			return false, err
		}
		return false, layers.WriteTar(w, files, layers.WithEpoch(st.b.opts.Epoch))
	})
	if err != nil || byContent == nil || st.cfg.History[len(st.cfg.History)-1].EmptyLayer {
		return err
	}
	l := st.layers[len(st.layers)-1]
	if _, err := st.b.opts.Cache.Put(ctx, *byContent, name, func(w io.Writer) error { return copyUncompressed(w, l) }); err != nil {
		return err
	}
	return nil
}

func copyUncompressed(w io.Writer, l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// placeCopy lays the sources out at their destination, with the owner
// and mode asked for, and the folders above them as the stage has them.
func (st *stage) placeCopy(ctx context.Context, c copySpec, srcs []source, dest string, destIsDir bool, mode fs.FileMode) ([]layers.File, error) {
	fsys, err := st.view(ctx)
	if err != nil {
		return nil, err
	}
	uid, gid, chown := 0, 0, c.chown != ""
	if chown {
		if uid, gid, err = st.owner(ctx, c.chown); err != nil {
			return nil, fmt.Errorf("--chown=%s: %w", c.chown, err)
		}
	}
	target, err := fsys.resolve(dest, false)
	if err != nil {
		return nil, err
	}
	if e, ok := fsys.get(target); ok && e.hdr.Typeflag == tar.TypeSymlink {
		if t, err := fsys.resolve(dest, true); err == nil {
			if e, ok := fsys.get(t); ok && e.hdr.Typeflag == tar.TypeDir {
				target = t
			}
		}
	}
	if e, ok := fsys.get(target); ok && e.hdr.Typeflag == tar.TypeDir {
		destIsDir = true
	}
	var out []layers.File
	own := func(f layers.File) layers.File {
		if chown {
			f.UID, f.GID = uid, gid
		}
		if mode != 0 && f.Mode&fs.ModeSymlink == 0 {
			f.Mode = f.Mode.Type() | mode
		}
		return f
	}
	for _, s := range srcs {
		switch {
		case s.dir:
			if target != "" {
				if _, ok := fsys.get(target); !ok {
					out = append(out, own(layers.Dir(target, 0o755)))
				}
			}
			for _, f := range s.files {
				f.Path = path.Join(target, f.Path)
				out = append(out, own(f))
			}
		case s.files[0].Source != "" && unpack(c, s):
			extracted, isArchive, err := st.extract(s.files[0].Source, target)
			if err != nil {
				return nil, fmt.Errorf("ADD %s: %w", s.name, err)
			}
			if isArchive {
				for _, f := range extracted {
					out = append(out, own(f))
				}
				continue
			}
			fallthrough
		default:
			f := s.files[0]
			f.Path = target
			if destIsDir {
				f.Path = path.Join(target, s.name)
			}
			out = append(out, own(f))
		}
	}
	return withParents(lastWins(out), fsys, uid, gid), nil
}

// lastWins keeps the last entry of each path: a later source overwrites
// an earlier one, as in BuildKit.
func lastWins(files []layers.File) []layers.File {
	at := map[string]int{}
	var out []layers.File
	for _, f := range files {
		p := strings.Trim(path.Clean("/"+f.Path), "/")
		if i, ok := at[p]; ok {
			out[i] = f
			continue
		}
		at[p] = len(out)
		out = append(out, f)
	}
	return out
}

// unpack says whether ADD extracts s, if an archive: a local file unless
// --unpack=false, a download only with --unpack=true, as in BuildKit.
func unpack(c copySpec, s source) bool {
	if !c.add {
		return false
	}
	if c.unpack != nil {
		return *c.unpack
	}
	return !s.fetched
}

// withParents lists the folders above files: as the stage has them, or
// created 0755 for owner uid:gid.
func withParents(files []layers.File, fsys *stageFS, uid, gid int) []layers.File {
	listed := map[string]bool{}
	for _, f := range files {
		listed[strings.Trim(f.Path, "/")] = true
	}
	for _, f := range files {
		for dir := path.Dir(strings.Trim(f.Path, "/")); dir != "." && dir != "/" && !listed[dir]; dir = path.Dir(dir) {
			listed[dir] = true
			d := layers.File{Path: dir, Mode: fs.ModeDir | 0o755, UID: uid, GID: gid}
			if e, ok := fsys.get(dir); ok && e.hdr.Typeflag == tar.TypeDir {
				d = layers.File{Path: dir, Mode: fs.ModeDir | fileMode(e.hdr.Mode), UID: e.hdr.Uid, GID: e.hdr.Gid}
			}
			files = append(files, d)
		}
	}
	return files
}

func copyName(c copySpec) string {
	if c.add {
		return "ADD"
	}
	return "COPY"
}

// fileMode turns tar mode bits into an fs.FileMode's permission bits.
func fileMode(m int64) fs.FileMode {
	mode := fs.FileMode(m).Perm()
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
