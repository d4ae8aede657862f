package buildcontext

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// remoteOptions are the registry options of o.
func (o options) remoteOptions(ctx context.Context) []remote.Option {
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain)}
	if o.transport != nil {
		ropts = append(ropts, remote.WithTransport(o.transport))
	}
	return ropts
}

// Push pushes the context img (from Pack) to ref and returns the digest
// reference that fetches it: what `kiln executor --context oci://` takes.
func Push(ctx context.Context, ref name.Reference, img v1.Image, opts ...Option) (name.Digest, error) {
	o, err := newOptions(opts)
	if err != nil {
		return name.Digest{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("pushing build context to %s: %w", ref, err)
	}
	if err := remote.Write(ref, img, o.remoteOptions(ctx)...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing build context to %s: %w", ref, err)
	}
	return ref.Context().Digest(d.String()), nil
}

// Fetch pulls the context ref names (best a digest reference, which
// cannot change) and extracts it into dst, which must exist.
func Fetch(ctx context.Context, ref name.Reference, dst string, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref, o.remoteOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("fetching build context %s: %w", ref, err)
	}
	if err := Extract(img, dst); err != nil {
		return fmt.Errorf("fetching build context %s: %w", ref, err)
	}
	return nil
}

// Extract writes the tree of the context img into the folder dst, which
// must exist. It refuses what is not a context, and entries that would
// leave dst (see the package documentation).
func Extract(img v1.Image, dst string) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	if m.Config.MediaType != MediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		return fmt.Errorf("not a kiln build context: want config %s and one %s layer, got config %s and %d layers", MediaType, types.OCILayer, m.Config.MediaType, len(m.Layers))
	}
	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return fmt.Errorf("reading the context layer: %w", err)
	}
	return ExtractTar(zr, dst)
}

// ExtractTar writes the tar stream r into the folder dst, which must
// exist, with Extract's checks. It serves tar:// and http:// contexts too.
func ExtractTar(r io.Reader, dst string) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the context tar: %w", err)
		}
		if err := extractEntry(root, tr, h); err != nil {
			return err
		}
	}
}

// inside returns the clean path of p within the tree, or false when it
// leaves it.
func inside(p string) (string, bool) {
	if path.IsAbs(p) || strings.Contains(p, "\\") {
		return "", false
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

func extractEntry(root *os.Root, tr *tar.Reader, h *tar.Header) error {
	rel, ok := inside(h.Name)
	if !ok {
		return fmt.Errorf("context entry %q: leaves the context folder", h.Name)
	}
	if rel == "." {
		return nil
	}
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("context entry %q: %w", h.Name, err)
		}
	}
	mode := fs.FileMode(h.Mode).Perm()
	switch h.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return fmt.Errorf("context entry %q: %w", h.Name, err)
		}
		return root.Chmod(rel, mode|0o700)
	case tar.TypeReg:
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode|0o600)
		if err != nil {
			return fmt.Errorf("context entry %q: %w", h.Name, err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("context entry %q: %w", h.Name, err)
		}
		return nil
	case tar.TypeSymlink:
		target := h.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(rel), target)
		}
		if _, ok := inside(target); !ok || path.IsAbs(h.Linkname) {
			return fmt.Errorf("context entry %q: link to %q leaves the context folder", h.Name, h.Linkname)
		}
		if err := root.Symlink(h.Linkname, rel); err != nil {
			return fmt.Errorf("context entry %q: %w", h.Name, err)
		}
		return nil
	case tar.TypeLink:
		target, ok := inside(h.Linkname)
		if !ok {
			return fmt.Errorf("context entry %q: link to %q leaves the context folder", h.Name, h.Linkname)
		}
		if err := root.Link(target, rel); err != nil {
			return fmt.Errorf("context entry %q: %w", h.Name, err)
		}
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("context entry %q: type %q is not allowed in a build context (folders, files and links only)", h.Name, string(h.Typeflag))
}
