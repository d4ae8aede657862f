package buildcontext

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// MediaType is the artifact type and the config media type of a build
// context.
const MediaType types.MediaType = "application/vnd.kiln.context.v1+json"

// configBlob is the config of every version 1 context.
var configBlob = []byte(`{"version":1}`)

// credentialFiles are the base names of files left out of every context:
// they hold credentials a build gets another way.
var credentialFiles = []string{".npmrc", ".pypirc", "pip.conf", ".netrc", ".git-credentials"}

// Option configures Pack, Push and Fetch.
type Option func(*options) error

type options struct {
	exclude   []string
	transport http.RoundTripper
	keychain  authn.Keychain
}

// WithExclude leaves out the paths patterns match too, in .dockerignore's
// syntax. Default: only what the context's .dockerignore and the rules of
// the package's documentation leave out.
func WithExclude(patterns ...string) Option {
	return func(o *options) error { o.exclude = append(o.exclude, patterns...); return nil }
}

// WithTransport sets the HTTP transport of registry requests. Default
// go-containerregistry's remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error { o.transport = t; return nil }
}

// WithKeychain sets where registry credentials come from. Default
// authn.DefaultKeychain: $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json, and their credential helpers.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error { o.keychain = k; return nil }
}

func newOptions(opts []Option) (options, error) {
	o := options{keychain: authn.DefaultKeychain}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// entry is one path of a packed tree.
type entry struct {
	rel  string // slash-separated, relative to the root
	mode fs.FileMode
	link string
	size int64
}

// Pack returns the build context of the folder dir as an image (see the
// package documentation). The tree is read when Pack is called, the file
// contents each time the layer is read.
func Pack(ctx context.Context, dir string, opts ...Option) (v1.Image, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	entries, err := walk(ctx, dir, o.exclude)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, dir, entries)) }()
		return pr, nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	return newArtifact(layer)
}

// walk lists the entries of dir that go into its context, in order.
func walk(ctx context.Context, dir string, extra []string) ([]entry, error) {
	ignore, err := readIgnore(dir, extra)
	if err != nil {
		return nil, err
	}
	var entries []entry
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if left, err := leftOut(ignore, rel, d.IsDir()); err != nil || left {
			if err == nil && d.IsDir() {
				return fs.SkipDir
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: rel, mode: info.Mode()}
		switch {
		case info.Mode().IsRegular():
			e.size = info.Size()
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir():
		default:
			return fmt.Errorf("%s: a %s cannot be part of a build context", p, info.Mode().Type())
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	// WalkDir goes in lexical order per folder; the format wants byte
	// order of the whole paths ("a/b" before "a.txt" in neither).
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.rel, b.rel) })
	return entries, nil
}

// readIgnore reads the context's .dockerignore with the extra patterns.
func readIgnore(dir string, extra []string) (*patternmatcher.PatternMatcher, error) {
	var patterns []string
	p := filepath.Join(dir, ".dockerignore")
	f, err := os.Open(p)
	switch {
	case err == nil:
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	patterns = append(patterns, extra...)
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return pm, nil
}

// leftOut says whether rel stays out of the context. A folder the
// patterns match stays in when a later "!" pattern may take back
// something inside it.
func leftOut(ignore *patternmatcher.PatternMatcher, rel string, dir bool) (bool, error) {
	base := path.Base(rel)
	switch {
	case rel == ".git" || slices.Contains(credentialFiles, base) || rel == ".docker/config.json" || strings.HasSuffix(rel, "/.docker/config.json"):
		return true, nil
	case ignore == nil || rel == ".dockerignore" || base == "Dockerfile" || strings.HasSuffix(base, ".Dockerfile") || strings.HasSuffix(base, ".dockerignore"):
		return false, nil
	}
	m, err := ignore.MatchesOrParentMatches(rel)
	if err != nil {
		return false, fmt.Errorf(".dockerignore: %w", err)
	}
	if m && dir && ignore.Exclusions() {
		return false, nil
	}
	return m, nil
}

// writeTar writes the entries of dir as a gzipped tar to w.
func writeTar(w io.Writer, dir string, entries []entry) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.rel, Mode: int64(e.mode.Perm()), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case e.mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, e.rel+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if err := copyFile(tw, filepath.Join(dir, filepath.FromSlash(e.rel)), e.size); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// copyFile copies size bytes of the file p, failing when the file
// changed size since the walk.
func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err == nil && n != size {
		err = fmt.Errorf("%s changed while it was packed", p)
	}
	return err
}

// artifact is a context's image: its manifest has the artifact type,
// which go-containerregistry's mutate cannot set.
type artifact struct {
	layer    v1.Layer
	manifest []byte
}

var _ partial.CompressedImageCore = (*artifact)(nil)

func newArtifact(layer v1.Layer) (v1.Image, error) {
	d, err := partial.Descriptor(layer)
	if err != nil {
		return nil, fmt.Errorf("packing: %w", err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(MediaType),
		Config:        v1.Descriptor{MediaType: MediaType, Size: int64(len(configBlob)), Digest: sha256Of(configBlob)},
		Layers:        []v1.Descriptor{{MediaType: types.OCILayer, Size: d.Size, Digest: d.Digest}},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{layer: layer, manifest: raw})
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return configBlob, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.layer.Digest(); err == nil && d == h {
		return a.layer, nil
	}
	return nil, fmt.Errorf("build context: no blob %s", h)
}

func sha256Of(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}
