package layers

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Option changes how a layer is written.
type Option func(*options)

type options struct {
	epoch time.Time
	owner *owner
}

type owner struct {
	prefix   string
	uid, gid int
}

// WithEpoch sets the modification time of every entry. The default is the
// Unix epoch (0); callers pass SOURCE_DATE_EPOCH when it is set.
func WithEpoch(t time.Time) Option {
	return func(o *options) { o.epoch = t.UTC() }
}

// WithTreeOwner gives uid:gid every entry at path prefix (a folder, relative
// to the root) or below it, listed or implied. The default owner is the
// one each File names, 0 for implied folders.
func WithTreeOwner(prefix string, uid, gid int) Option {
	return func(o *options) { o.owner = &owner{prefix: strings.Trim(prefix, "/"), uid: uid, gid: gid} }
}

func (o *owner) covers(p string) bool {
	return o != nil && (p == o.prefix || strings.HasPrefix(p, o.prefix+"/"))
}

func newOptions(opts []Option) options {
	o := options{epoch: time.Unix(0, 0).UTC()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// ConflictError reports two entries that claim one path with different
// content or type.
type ConflictError struct {
	Path          string
	First, Second string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("layer path /%s is given twice: %s and %s", e.Path, e.First, e.Second)
}

// WriteTar writes files as an uncompressed tar stream to w, sorted by path,
// with every parent directory present. Files listed twice must be identical.
func WriteTar(w io.Writer, files []File, opts ...Option) error {
	o := newOptions(opts)
	entries, err := normalise(files)
	if err != nil {
		return err
	}
	for i := range entries {
		if o.owner.covers(entries[i].Path) {
			entries[i].UID, entries[i].GID = o.owner.uid, o.owner.gid
		}
	}
	tw := tar.NewWriter(w)
	for _, f := range entries {
		if err := writeEntry(tw, f, o.epoch); err != nil {
			return fmt.Errorf("writing /%s: %w", f.Path, err)
		}
	}
	return tw.Close()
}

func normalise(files []File) ([]File, error) {
	byPath := make(map[string]File, len(files))
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		f.Path = p
		switch f.Mode.Type() {
		case 0, fs.ModeDir, fs.ModeSymlink:
		default:
			return nil, fmt.Errorf("layer path /%s: unsupported file type %s", p, f.Mode.Type())
		}
		if prev, ok := byPath[p]; ok {
			if !sameEntry(prev, f) {
				return nil, &ConflictError{Path: p, First: origin(prev), Second: origin(f)}
			}
			continue
		}
		byPath[p] = f
	}
	// Parents are added after the listed entries so that a listed
	// directory's own mode and owner win over the implied default.
	for p := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if prev, ok := byPath[dir]; ok {
				if !prev.Mode.IsDir() {
					return nil, &ConflictError{Path: dir, First: origin(prev), Second: "the parent directory of /" + p}
				}
				break
			}
			byPath[dir] = Dir(dir, 0o755)
		}
	}
	out := make([]File, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func sameEntry(a, b File) bool {
	return a.Mode == b.Mode && a.Linkname == b.Linkname && a.UID == b.UID && a.GID == b.GID &&
		a.Source == b.Source && bytes.Equal(a.Data, b.Data)
}

func origin(f File) string {
	switch {
	case f.Mode.IsDir():
		return "a directory"
	case f.Mode&fs.ModeSymlink != 0:
		return "a link to " + f.Linkname
	case f.Source != "":
		return f.Source
	default:
		return fmt.Sprintf("%d bytes of generated content", len(f.Data))
	}
}

func writeEntry(tw *tar.Writer, f File, epoch time.Time) error {
	if f.Mode.Type() != 0 || f.Source == "" {
		if err := tw.WriteHeader(header(f, int64(len(f.Data)), epoch)); err != nil {
			return err
		}
		_, err := tw.Write(f.Data)
		return err
	}
	src, err := os.Open(f.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Source)
	}
	hdr := header(f, info.Size(), epoch)
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", f.Source, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s changed size while being read", f.Source)
	}
	return nil
}

// header returns the tar header of f, a regular file holding size bytes
// or a directory or link (size unused).
func header(f File, size int64, epoch time.Time) *tar.Header {
	hdr := &tar.Header{
		Name:    f.Path,
		Mode:    tarMode(f.Mode),
		Uid:     f.UID,
		Gid:     f.GID,
		ModTime: epoch,
	}
	switch f.Mode.Type() {
	case fs.ModeDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case fs.ModeSymlink:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.Linkname
	default:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = size
	}
	hdr.Format = tar.FormatUSTAR
	if needsPAX(hdr) {
		hdr.Format = tar.FormatPAX
	}
	return hdr
}

// maxUSTARSize is the largest size the USTAR header's 11 octal digits hold:
// 8 GiB less one byte.
const maxUSTARSize = 1<<33 - 1

// needsPAX reports whether an entry does not fit the USTAR header, which
// keeps the common case byte-compatible with every tar reader.
func needsPAX(hdr *tar.Header) bool {
	return len(hdr.Name) > 100 || len(hdr.Linkname) > 100 || !isASCII(hdr.Name) || !isASCII(hdr.Linkname) ||
		hdr.Uid > 0o7777777 || hdr.Gid > 0o7777777 || hdr.Size > maxUSTARSize
}

func isASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 }) < 0
}

func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
