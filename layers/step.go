package layers

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Step is one cacheable layer of an image: the builder asks the cache for
// Key and runs Build only on a miss.
type Step interface {
	// Name says what the layer holds, for progress output.
	Name() string
	// Key digests every input that decides the layer's bytes. It returns
	// ErrNoLayer when those inputs show the step adds nothing to this image.
	Key(ctx context.Context) (v1.Hash, error)
	// Build writes the layer as an uncompressed tar stream to w.
	Build(ctx context.Context, w io.Writer) error
}

// ErrNoLayer is returned by a step's Key when the step turns out to add no
// layer, which only its inputs tell (a host tool's version, say): the
// builder leaves it out of the image.
var ErrNoLayer = errors.New("the step adds no layer")

// FilesStep returns a step that writes a fixed set of files. Its key covers
// every entry's path, type, mode, owner and content, and the epoch.
func FilesStep(name string, files []File, opts ...Option) Step {
	return &filesStep{name: name, files: files, opts: opts}
}

type filesStep struct {
	name  string
	files []File
	opts  []Option
}

func (s *filesStep) Name() string { return s.name }

func (s *filesStep) Key(ctx context.Context) (v1.Hash, error) {
	o := newOptions(s.opts)
	k := NewKey("files/v2").String(o.epoch.Format(time.RFC3339Nano))
	if o.owner != nil {
		k.String(fmt.Sprintf("owner %s %d:%d", o.owner.prefix, o.owner.uid, o.owner.gid))
	}
	if err := k.Files(s.files); err != nil {
		return v1.Hash{}, fmt.Errorf("hashing %s: %w", s.name, err)
	}
	return k.Sum(), nil
}

func (s *filesStep) Build(ctx context.Context, w io.Writer) error {
	return WriteTar(w, s.files, s.opts...)
}

// LazyFilesStep returns a step like FilesStep whose files are known only
// once other work is done, such as compiled classes or resolved jars:
// list runs when the key is asked, and again when the layer is built, so
// it should keep its result. No files means no layer.
func LazyFilesStep(name string, list func(ctx context.Context) ([]File, error), opts ...Option) Step {
	return &lazyFilesStep{name: name, list: list, opts: opts}
}

type lazyFilesStep struct {
	name string
	list func(ctx context.Context) ([]File, error)
	opts []Option
}

func (s *lazyFilesStep) Name() string { return s.name }

func (s *lazyFilesStep) Key(ctx context.Context) (v1.Hash, error) {
	files, err := s.list(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	if len(files) == 0 {
		return v1.Hash{}, ErrNoLayer
	}
	return FilesStep(s.name, files, s.opts...).Key(ctx)
}

func (s *lazyFilesStep) Build(ctx context.Context, w io.Writer) error {
	files, err := s.list(ctx)
	if err != nil {
		return err
	}
	return WriteTar(w, files, s.opts...)
}

// Key accumulates the inputs of a step into a digest. Every value is
// length-prefixed, so no two different input lists hash alike.
type Key struct {
	h hash.Hash
}

// NewKey starts a key for one kind of step; kind should change whenever the
// way the step builds its layer changes, so old cache entries stop matching.
func NewKey(kind string) *Key {
	k := &Key{h: sha256.New()}
	k.String(kind)
	return k
}

// String adds a string.
func (k *Key) String(s string) *Key {
	k.int(int64(len(s)))
	io.WriteString(k.h, s)
	return k
}

// Strings adds a list of strings in order.
func (k *Key) Strings(ss ...string) *Key {
	k.int(int64(len(ss)))
	for _, s := range ss {
		k.String(s)
	}
	return k
}

// Hash adds another digest.
func (k *Key) Hash(h v1.Hash) *Key { return k.String(h.String()) }

func (k *Key) int(n int64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	k.h.Write(b[:])
}

// File adds the content of the host file at path.
func (k *Key) File(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	k.int(info.Size())
	n, err := io.Copy(k.h, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s changed size while being read", path)
	}
	return nil
}

// Files adds layer entries: paths, types, modes, owners, link targets and
// contents, in path order.
func (k *Key) Files(files []File) error {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	k.int(int64(len(sorted)))
	for _, f := range sorted {
		k.String(f.Path).String(f.Linkname)
		k.int(int64(f.Mode))
		k.int(int64(f.UID))
		k.int(int64(f.GID))
		switch {
		case f.Mode.Type() != 0:
		case f.Source != "":
			if err := k.File(f.Source); err != nil {
				return err
			}
		default:
			k.int(int64(len(f.Data)))
			k.h.Write(f.Data)
		}
	}
	return nil
}

// Sum returns the key.
func (k *Key) Sum() v1.Hash { return hashOf(k.h) }
