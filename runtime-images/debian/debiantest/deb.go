package debiantest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// File is an entry of a test package's data archive.
type File struct {
	// Path is written as given; Debian's own archives use "./usr/...".
	Path string
	// Type is a tar type flag; 0 means a regular file.
	Type byte
	// Mode holds the permission bits, setuid, setgid and sticky included.
	Mode     int64
	Linkname string
	Data     string
	UID, GID int
}

// Deb describes a test package.
type Deb struct {
	Name    string
	Version string
	// Arch defaults to "all".
	Arch                          string
	Depends, PreDepends, Provides string
	Files                         []File
	// DataCompression is "xz" (the default), "zst", "gz" or "none".
	DataCompression string
	// ControlCompression is "xz" (the default), "gz" or "none".
	ControlCompression string
}

func (d Deb) arch() string {
	if d.Arch == "" {
		return "all"
	}
	return d.Arch
}

// Control returns the package's control stanza.
func (d Deb) Control() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\n", d.Name, d.Version, d.arch())
	for _, f := range []struct{ name, value string }{
		{"Pre-Depends", d.PreDepends}, {"Depends", d.Depends}, {"Provides", d.Provides},
	} {
		if f.value != "" {
			fmt.Fprintf(&b, "%s: %s\n", f.name, f.value)
		}
	}
	fmt.Fprintf(&b, "Maintainer: kiln tests <tests@kiln.invalid>\nDescription: %s for tests\n made by debiantest.\n", d.Name)
	return b.String()
}

// Build returns the .deb file: an ar archive of debian-binary,
// control.tar.* and data.tar.*. The same Deb always gives the same bytes.
func (d Deb) Build() ([]byte, error) {
	control, err := tarball([]File{{Path: "./", Type: tar.TypeDir, Mode: 0o755}, {Path: "./control", Mode: 0o644, Data: d.Control()}})
	if err != nil {
		return nil, err
	}
	data, err := tarball(append([]File{{Path: "./", Type: tar.TypeDir, Mode: 0o755}}, d.Files...))
	if err != nil {
		return nil, err
	}
	cext, control, err := compress(d.ControlCompression, control)
	if err != nil {
		return nil, err
	}
	dext, data, err := compress(d.DataCompression, data)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar" + cext, control},
		{"data.tar" + dext, data},
	} {
		fmt.Fprintf(&out, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		out.Write(m.data)
		if len(m.data)%2 == 1 {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

func tarball(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{
			Name: f.Path, Typeflag: typ, Mode: f.Mode, Linkname: f.Linkname,
			Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0), Format: tar.FormatGNU,
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compress returns data compressed with the named method and the file
// name extension that says so.
func compress(method string, data []byte) (string, []byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	var ext string
	var err error
	switch method {
	case "", "xz":
		ext = ".xz"
		w, err = xz.NewWriter(&buf)
	case "gz":
		ext = ".gz"
		w = gzip.NewWriter(&buf)
	case "zst":
		ext = ".zst"
		w, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	case "none":
		return "", data, nil
	default:
		return "", nil, fmt.Errorf("unknown compression %q", method)
	}
	if err != nil {
		return "", nil, err
	}
	if _, err := w.Write(data); err != nil {
		return "", nil, err
	}
	if err := w.Close(); err != nil {
		return "", nil, err
	}
	return ext, buf.Bytes(), nil
}
