package dockerfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/layers"
)

// fetch downloads an ADD <url> source. The file is named by the URL's
// last path element and is 0600, as BuildKit makes it.
func (st *stage) fetch(ctx context.Context, src, checksum string) (source, error) {
	u, err := url.Parse(src)
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w", src, err)
	}
	name := "__unnamed__"
	if base := path.Base(u.Path); base != "." && base != "/" {
		name = base
	}
	s := step.Start(ctx, "fetch "+src)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		s.End(err)
		return source{}, fmt.Errorf("ADD %s: %w", src, err)
	}
	resp, err := st.b.opts.HTTPClient.Do(req)
	if err != nil {
		s.End(err)
		return source{}, fmt.Errorf("ADD %s: %w", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("ADD %s: %s", src, resp.Status)
		s.End(err)
		return source{}, err
	}
	f, err := os.CreateTemp(st.b.scratch, "url-")
	if err != nil {
		s.End(err)
		return source{}, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h, s.Writer(io.Discard)), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.End(err)
		return source{}, fmt.Errorf("ADD %s: %w", src, err)
	}
	s.End(nil)
	if checksum != "" {
		want, ok := strings.CutPrefix(checksum, "sha256:")
		if got := hex.EncodeToString(h.Sum(nil)); !ok || got != want {
			return source{}, fmt.Errorf("ADD %s: --checksum=%s does not match the content, sha256:%s", src, checksum, got)
		}
	}
	return source{name: name, fetched: true, files: []layers.File{layers.HostFile(name, 0o600, f.Name())}}, nil
}

// extract lists the archive at file as entries under dest, and reports
// false when the file is no archive (ADD copies it then as it is).
// Archives may be compressed with gzip, bzip2, xz or zstd.
func (st *stage) extract(file, dest string) ([]layers.File, bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, nil
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		if r, err = xz.NewReader(br); err != nil {
			return nil, false, nil
		}
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, false, nil
		}
		defer zr.Close()
		r = zr
	}
	tr := bufio.NewReaderSize(r, 1024)
	head, _ := tr.Peek(512)
	if len(head) < 512 || string(head[257:262]) != "ustar" {
		return nil, false, nil
	}
	dir, err := os.MkdirTemp(st.b.scratch, "add-")
	if err != nil {
		return nil, false, err
	}
	out, err := untar(tar.NewReader(tr), dest, dir)
	return out, true, err
}

// untar lists a tar's entries under dest, writing regular files' content
// under dir.
func untar(tr *tar.Reader, dest, dir string) ([]layers.File, error) {
	var out []layers.File
	content := map[string]string{}
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		rel := cleanRel(hdr.Name)
		if rel == "" {
			continue
		}
		f := layers.File{Path: path.Join(dest, rel), Mode: fileMode(hdr.Mode), UID: hdr.Uid, GID: hdr.Gid}
		switch hdr.Typeflag {
		case tar.TypeDir:
			f.Mode |= fs.ModeDir
		case tar.TypeSymlink:
			f.Mode, f.Linkname = fs.ModeSymlink|0o777, hdr.Linkname
		case tar.TypeLink:
			src, ok := content[cleanRel(hdr.Linkname)]
			if !ok {
				return nil, fmt.Errorf("%s: a hard link to %s, which the archive does not hold before it", hdr.Name, hdr.Linkname)
			}
			f.Source = src
		case tar.TypeReg:
			f.Source = filepath.Join(dir, strconv.Itoa(n))
			if err := writeFile(f.Source, tr); err != nil {
				return nil, err
			}
			content[rel] = f.Source
		default:
			continue
		}
		out = append(out, f)
	}
}
