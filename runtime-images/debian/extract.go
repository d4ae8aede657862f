package debian

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/control"
	"pault.ag/go/debian/deb"

	"github.com/kiln-build/kiln/layers"
)

// ExtractVersion changes whenever Extract gives different entries for the
// same .deb, so that layer caches keyed on it stop matching.
const ExtractVersion = "1"

// StatusDir is where Extract records installed packages, one control
// stanza per file, as distroless images do; image scanners read it in
// place of /var/lib/dpkg/status.
const StatusDir = "var/lib/dpkg/status.d"

// maxControl bounds the control file read into memory.
const maxControl = 1 << 20

// Contents is what a .deb installs.
type Contents struct {
	// Package, Version and Architecture come from the control file.
	Package, Version, Architecture string
	// Control is the control stanza as the package ships it.
	Control []byte
	// Files are the entries of the package's data archive, documentation
	// left out, plus StatusDir/<package> holding Control. A regular file's
	// Source points into the directory given to Extract; hard links become
	// regular files sharing their target's Source.
	Files []layers.File
}

// Extract unpacks the .deb at debPath. Regular files are written under dir,
// which the caller creates and removes, so memory stays bounded whatever
// the package's size. Left out, as in distroless images: usr/share/doc
// except each package's copyright file, usr/share/man, usr/share/info and
// usr/share/lintian. Devices, pipes and sockets have no place in an image
// and are left out too.
func Extract(ctx context.Context, debPath, dir string) (*Contents, error) {
	file, err := os.Open(debPath)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	c, err := extract(ctx, file, dir)
	if err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", debPath, err)
	}
	return c, nil
}

func extract(ctx context.Context, r io.ReaderAt, dir string) (*Contents, error) {
	ar, err := deb.LoadAr(r)
	if err != nil {
		return nil, err
	}
	c := &Contents{}
	var sawBinary, sawData bool
	for {
		member, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the ar archive: %w", err)
		}
		switch {
		case member.Name == "debian-binary":
			v, err := io.ReadAll(io.LimitReader(member.Data, 64))
			if err != nil {
				return nil, err
			}
			if !strings.HasPrefix(string(v), "2.") {
				return nil, fmt.Errorf("unsupported .deb format %q", strings.TrimSpace(string(v)))
			}
			sawBinary = true
		case strings.HasPrefix(member.Name, "control.tar"):
			if err := c.readControl(member); err != nil {
				return nil, fmt.Errorf("reading %s: %w", member.Name, err)
			}
		case strings.HasPrefix(member.Name, "data.tar"):
			if err := c.readData(ctx, member, dir); err != nil {
				return nil, fmt.Errorf("reading %s: %w", member.Name, err)
			}
			sawData = true
		}
	}
	switch {
	case !sawBinary:
		return nil, errors.New("not a .deb: no debian-binary member")
	case c.Control == nil:
		return nil, errors.New("no control file")
	case !sawData:
		return nil, errors.New("no data archive")
	}
	c.Files = append(c.Files, layers.Bytes(path.Join(StatusDir, c.Package), 0o644, c.Control))
	return c, nil
}

// untar opens a tar member compressed as its name says.
func untar(m *deb.ArEntry) (*tar.Reader, func(), error) {
	ext := strings.TrimPrefix(path.Ext(m.Name), ".")
	if strings.HasSuffix(m.Name, ".tar") {
		ext = ""
	}
	// The member is read through a section of the file: buffer it, or the
	// decompressors issue a read per byte or so.
	data := bufio.NewReaderSize(m.Data, 1<<16)
	switch ext {
	case "":
		return tar.NewReader(data), func() {}, nil
	case "gz":
		zr, err := gzip.NewReader(data)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), func() { zr.Close() }, nil
	case "xz":
		zr, err := xz.NewReader(data)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), func() {}, nil
	case "zst":
		zr, err := zstd.NewReader(data)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), zr.Close, nil
	default:
		return nil, nil, fmt.Errorf("unsupported compression %q", ext)
	}
}

func (c *Contents) readControl(m *deb.ArEntry) error {
	tr, closeFn, err := untar(m)
	if err != nil {
		return err
	}
	defer closeFn()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if path.Clean(hdr.Name) != "control" || hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxControl+1))
		if err != nil {
			return err
		}
		if len(data) > maxControl {
			return fmt.Errorf("control file larger than %d bytes", maxControl)
		}
		pr, err := control.NewParagraphReader(bytes.NewReader(data), nil)
		if err != nil {
			return fmt.Errorf("parsing the control file: %w", err)
		}
		p, err := pr.Next()
		if err != nil {
			return fmt.Errorf("parsing the control file: %w", err)
		}
		c.Package, c.Version, c.Architecture = p.Values["Package"], p.Values["Version"], p.Values["Architecture"]
		if c.Package == "" || strings.ContainsAny(c.Package, "/\x00") || c.Package == "." || c.Package == ".." {
			return fmt.Errorf("control file has a bad Package field %q", c.Package)
		}
		if !bytes.HasSuffix(data, []byte("\n")) {
			data = append(data, '\n')
		}
		c.Control = data
	}
}

func (c *Contents) readData(ctx context.Context, m *deb.ArEntry, dir string) error {
	tr, closeFn, err := untar(m)
	if err != nil {
		return err
	}
	defer closeFn()
	// written maps in-package paths of regular files to their host copies,
	// for hard links, which tar stores after their target.
	written := make(map[string]string)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p, ok := entryPath(hdr.Name)
		if !ok {
			return fmt.Errorf("entry %q leaves the root", hdr.Name)
		}
		if p == "" {
			continue // the root itself
		}
		f := layers.File{Path: p, Mode: mode(hdr.Mode), UID: hdr.Uid, GID: hdr.Gid}
		switch hdr.Typeflag {
		case tar.TypeDir:
			f.Mode |= fs.ModeDir
		case tar.TypeSymlink:
			f.Mode = fs.ModeSymlink | 0o777
			f.Linkname = hdr.Linkname
		case tar.TypeReg:
			// Every regular file is written, documentation too, since a
			// kept hard link may point at a dropped file.
			host := filepath.Join(dir, strconv.Itoa(n))
			if err := writeFile(host, tr); err != nil {
				return fmt.Errorf("extracting /%s: %w", p, err)
			}
			written[p] = host
			f.Source = host
		case tar.TypeLink:
			target, ok := entryPath(hdr.Linkname)
			if !ok || written[target] == "" {
				return fmt.Errorf("hard link /%s points to %q, which is not a regular file before it", p, hdr.Linkname)
			}
			written[p] = written[target]
			f.Source = written[target]
		default:
			continue
		}
		if isDocumentation(p) {
			continue
		}
		c.Files = append(c.Files, f)
	}
}

// entryPath turns a tar entry name ("./usr/bin/x") into a layer path
// ("usr/bin/x"), "" for the root; false if the name leaves the root.
func entryPath(name string) (string, bool) {
	clean := path.Clean("/" + name)
	if strings.Contains(name, "\x00") {
		return "", false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", false
		}
	}
	return strings.TrimPrefix(clean, "/"), true
}

func mode(m int64) fs.FileMode {
	out := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

func writeFile(host string, r io.Reader) error {
	out, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// isDocumentation reports whether p is one of the paths distroless images
// leave out: documentation, manual pages, info pages and lintian
// overrides. A package's copyright file stays, since licences require it.
func isDocumentation(p string) bool {
	for _, dir := range []string{"usr/share/man", "usr/share/info", "usr/share/lintian"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	rest, ok := strings.CutPrefix(p, "usr/share/doc/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		return false // the package's directory, or a link to another's
	case 2:
		return parts[1] != "copyright"
	default:
		return true
	}
}
