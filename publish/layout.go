package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/flock"
	"github.com/kiln-build/kiln/internal/xattr"
)

// Layout publishes into an OCI image layout directory, replacing the image
// previously stored under the same reference name. Several processes may
// publish into one layout at once:
//
//   - every blob is written to a temporary file, checked against its
//     digest and renamed into place; a blob already there is hashed first,
//     and replaced if it does not match (a blob of the right size with a
//     flipped byte would otherwise be kept);
//   - index.json is replaced whole (a temporary file renamed over it),
//     under an exclusive lock on the layout's index.lock held across
//     processes, so no update is lost and no reader sees half a file;
//   - each name also has a record in names/, from which a damaged
//     index.json is rebuilt.
//
// Images read back (Lookup, Image) come from the blobs alone, each blob
// checked against its digest as it is read.
type Layout struct {
	dir string
}

var _ Publisher = (*Layout)(nil)

// NewLayout returns a publisher writing to the layout at dir, created if
// absent.
func NewLayout(dir string) *Layout { return &Layout{dir: dir} }

// RefNameAnnotation names an image in an OCI layout's index: the
// reference it was published under.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// ErrNotFound is what Lookup and Image return, wrapped, when the layout
// has no such image.
var ErrNotFound = errors.New("no such image")

// Publish implements Publisher. When it returns, index.json names the
// image under ref.Name().
func (l *Layout) Publish(ctx context.Context, img v1.Image, ref name.Reference) (name.Digest, error) {
	digest, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	// Held while writing: a prune of kiln's cache then removes no blob
	// this image is about to name (see cache.LockImages).
	lock, err := cache.LockImages(l.dir)
	if err != nil {
		return name.Digest{}, err
	}
	defer lock.Close()
	if err := l.writeImage(ctx, img); err != nil {
		return name.Digest{}, fmt.Errorf("writing %s to OCI layout %s: %w", ref.Name(), l.dir, err)
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return name.Digest{}, err
	}
	entry := v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest,
		Annotations: map[string]string{RefNameAnnotation: ref.Name()}}
	err = l.updateIndex(ctx, func(m *v1.IndexManifest) {
		m.Manifests = slices.DeleteFunc(m.Manifests, func(d v1.Descriptor) bool {
			return d.Annotations[RefNameAnnotation] == ref.Name()
		})
		m.Manifests = append(m.Manifests, entry)
	})
	if err != nil {
		return name.Digest{}, fmt.Errorf("naming %s in OCI layout %s: %w", ref.Name(), l.dir, err)
	}
	return ref.Context().Digest(digest.String()), nil
}

// writeImage writes the layers, the config and the manifest of img.
func (l *Layout) writeImage(ctx context.Context, img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, layer := range ls {
		d, err := layer.Digest()
		if err != nil {
			return err
		}
		size, err := layer.Size()
		if err != nil {
			return err
		}
		if err := l.writeBlob(ctx, d, size, layer.Compressed); err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	for _, raw := range []func() ([]byte, error){img.RawConfigFile, img.RawManifest} {
		b, err := raw()
		if err != nil {
			return err
		}
		h, size, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if err := l.writeBlob(ctx, h, size, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }); err != nil {
			return err
		}
	}
	return nil
}

func (l *Layout) blobPath(h v1.Hash) string {
	return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

// writeBlob puts the blob h of size bytes in place, unless one that
// matches is there already.
func (l *Layout) writeBlob(ctx context.Context, h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	path := l.blobPath(h)
	err := checkBlob(path, h, size)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		slog.WarnContext(ctx, "replacing a damaged blob of the OCI layout", "blob", path, "reason", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	err = atomicfile.WriteFrom(path, func(w io.Writer) error {
		vr, err := newVerifyingReader(rc, h, size, path)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, vr)
		return err
	})
	if err == nil {
		markVerified(path, h)
	}
	return err
}

// verifiedAttr marks a blob that hashed to its digest, with the size,
// modification time and inode it had then: while they are unchanged, a
// later publish of an image that shares the blob need not hash it again (a
// dev loop republishes every layer of the image on each edit). Reads
// verify blobs regardless.
const verifiedAttr = "user.kiln.verified"

// stamp names the state of the blob file fi for verifiedAttr.
func stamp(h v1.Hash, fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%s %d %d %d", h.Hex, fi.Size(), fi.ModTime().UnixNano(), ino)
}

// markVerified records that the blob at path is whole, where the
// filesystem keeps extended attributes.
func markVerified(path string, h v1.Hash) {
	if fi, err := os.Stat(path); err == nil {
		xattr.Set(path, verifiedAttr, stamp(h, fi))
	}
}

// checkBlob compares the file at path with h and size: by its verified
// mark when that still matches the file, else by hashing it.
func checkBlob(path string, h v1.Hash, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() == size {
		if mark, err := xattr.Get(path, verifiedAttr); err == nil && mark == stamp(h, fi) {
			return nil
		}
	}
	vr, err := newVerifyingReader(f, h, size, path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return err
	}
	markVerified(path, h)
	return nil
}

// BlobError is a blob whose content does not match its digest or size.
type BlobError struct {
	Path string
	Want v1.Hash
	// Got is what the content hashes to; Size its length.
	Got  string
	Size int64
}

func (e *BlobError) Error() string {
	return fmt.Sprintf("blob %s is damaged: its %d bytes hash to sha256:%s", e.Path, e.Size, e.Got)
}

// verifyingReader reads a blob and fails at its end, or past its size,
// when the content is not what its digest says.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	size int64
	n    int64
	path string
}

func newVerifyingReader(r io.Reader, want v1.Hash, size int64, path string) (*verifyingReader, error) {
	if want.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: digest algorithm %s: only sha256 is supported", path, want.Algorithm)
	}
	return &verifyingReader{r: r, h: sha256.New(), want: want, size: size, path: path}, nil
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, v.mismatch()
	}
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex || (v.size >= 0 && v.n != v.size) {
			return n, v.mismatch()
		}
	}
	return n, err
}

func (v *verifyingReader) mismatch() error {
	return &BlobError{Path: v.path, Want: v.want, Got: hex.EncodeToString(v.h.Sum(nil)), Size: v.n}
}

// updateIndex applies change to index.json under the layout's index lock,
// and replaces the file whole. A damaged index.json is rebuilt from the
// name records first.
func (l *Layout) updateIndex(ctx context.Context, change func(*v1.IndexManifest)) error {
	lockPath := filepath.Join(l.dir, "index.lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	lock, err := flock.Exclusive(lockPath)
	if err != nil {
		return err
	}
	defer lock.Close()
	if _, err := os.Stat(filepath.Join(l.dir, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.Write(filepath.Join(l.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return err
		}
	}
	m, err := l.index(ctx)
	if err != nil {
		return err
	}
	change(m)
	// The records first: a name in index.json always has one.
	for _, d := range m.Manifests {
		if err := l.writeRecord(d); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(l.dir, "index.json"), b)
}

// index reads index.json; a missing one is empty, and a damaged one is
// rebuilt from the name records whose images are whole.
func (l *Layout) index(ctx context.Context) (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	m, perr := v1.ParseIndexManifest(bytes.NewReader(b))
	if perr == nil {
		return m, nil
	}
	slog.WarnContext(ctx, "rebuilding the damaged index.json of the OCI layout from its name records", "dir", l.dir, "reason", perr)
	return l.rebuildIndex()
}

// Names lists the names the layout's images were published under, sorted.
func (l *Layout) Names(ctx context.Context) ([]string, error) {
	m, err := l.index(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range m.Manifests {
		if n := d.Annotations[RefNameAnnotation]; n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func (l *Layout) namesDir() string { return filepath.Join(l.dir, "names") }

// recordPath is where the record of the image named ref lives.
func (l *Layout) recordPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(l.namesDir(), hex.EncodeToString(sum[:])+".json")
}

// writeRecord writes the record of a named entry of index.json, unless it
// is there already.
func (l *Layout) writeRecord(d v1.Descriptor) error {
	ref := d.Annotations[RefNameAnnotation]
	if ref == "" {
		return nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	path := l.recordPath(ref)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(l.namesDir(), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// rebuildIndex makes index.json's content from the name records whose
// manifest is on disk.
func (l *Layout) rebuildIndex() (*v1.IndexManifest, error) {
	m := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	des, err := os.ReadDir(l.namesDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(l.namesDir(), de.Name()))
		if err != nil {
			continue
		}
		var d v1.Descriptor
		if json.Unmarshal(b, &d) != nil || d.Annotations[RefNameAnnotation] == "" {
			continue
		}
		if checkBlob(l.blobPath(d.Digest), d.Digest, d.Size) != nil {
			continue
		}
		m.Manifests = append(m.Manifests, d)
	}
	slices.SortFunc(m.Manifests, func(a, b v1.Descriptor) int {
		return strings.Compare(a.Annotations[RefNameAnnotation], b.Annotations[RefNameAnnotation])
	})
	return m, nil
}

// Lookup returns the image stored under ref's name, as Publish stored it.
func (l *Layout) Lookup(ref name.Reference) (v1.Image, error) {
	m, err := l.index(context.Background())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not in %s: %w", ref.Name(), l.dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", l.dir, err)
	}
	for _, d := range m.Manifests {
		if d.Annotations[RefNameAnnotation] == ref.Name() && d.MediaType.IsImage() {
			img, err := l.Image(d.Digest)
			if errors.Is(err, ErrNotFound) {
				// Named, but its manifest is gone: damaged, not absent.
				return nil, fmt.Errorf("%s names image %s in %s, whose manifest is missing", ref.Name(), d.Digest, l.dir)
			}
			return img, err
		}
	}
	return nil, fmt.Errorf("%s is not in %s: %w", ref.Name(), l.dir, ErrNotFound)
}

// Image returns the image whose manifest has digest h, read from the
// layout's blobs, each checked against its digest as it is read.
func (l *Layout) Image(h v1.Hash) (v1.Image, error) {
	path := l.blobPath(h)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading OCI layout %s: image %s: %w", l.dir, h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", l.dir, err)
	}
	defer f.Close()
	vr, err := newVerifyingReader(f, h, -1, path)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(vr)
	if err != nil {
		return nil, err
	}
	mf, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", h, err)
	}
	return partial.CompressedToImage(&blobImage{l: l, raw: raw, manifest: mf})
}

// blobImage is an image of the layout read from its blobs alone.
type blobImage struct {
	l        *Layout
	raw      []byte
	manifest *v1.Manifest
}

func (i *blobImage) RawManifest() ([]byte, error) { return i.raw, nil }

func (i *blobImage) MediaType() (types.MediaType, error) {
	if i.manifest.MediaType != "" {
		return i.manifest.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

func (i *blobImage) RawConfigFile() ([]byte, error) {
	rc, err := (&blobLayer{l: i.l, desc: i.manifest.Config}).Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (i *blobImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.manifest.Config.Digest {
		return &blobLayer{l: i.l, desc: i.manifest.Config}, nil
	}
	for _, d := range i.manifest.Layers {
		if d.Digest == h {
			return &blobLayer{l: i.l, desc: d}, nil
		}
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}

// blobLayer is a blob of the layout, checked as it is read.
type blobLayer struct {
	l    *Layout
	desc v1.Descriptor
}

func (b *blobLayer) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *blobLayer) Size() (int64, error)                { return b.desc.Size, nil }
func (b *blobLayer) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	path := b.l.blobPath(b.desc.Digest)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	vr, err := newVerifyingReader(f, b.desc.Digest, b.desc.Size, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{vr, f}, nil
}
