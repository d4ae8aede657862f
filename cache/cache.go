package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/layers"
)

// ErrNotFound is returned by Get when the store has no valid entry for a key.
var ErrNotFound = errors.New("not in the cache")

// Store is a layer cache in one directory. Several processes may share it.
type Store struct {
	dir string
}

// entry is what a key file holds.
type entry struct {
	layers.Descriptor
	// Name is the step's name, shown by `kiln cache ls`.
	Name string `json:"name"`
}

// Open returns the store rooted at dir, creating it if needed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("opening cache: no directory given")
	}
	s := &Store{dir: dir}
	for _, d := range []string{s.keysDir(), s.blobsDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("opening cache: %w", err)
		}
	}
	return s, nil
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

func (s *Store) keysDir() string  { return filepath.Join(s.dir, "layers", "v1", "keys") }
func (s *Store) blobsDir() string { return filepath.Join(s.dir, "layers", "v1", "blobs", "sha256") }
func (s *Store) tmpDir() string   { return filepath.Join(s.dir, "layers", "v1", "tmp") }

func (s *Store) keyPath(key v1.Hash) string { return filepath.Join(s.keysDir(), key.Hex+".json") }

func (s *Store) blobPath(d v1.Hash) string { return filepath.Join(s.blobsDir(), d.Hex) }

// Get returns the layer stored for key, or ErrNotFound. The blob is verified
// against its digest first.
func (s *Store) Get(ctx context.Context, key v1.Hash) (v1.Layer, error) {
	b, err := os.ReadFile(s.keyPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading cache entry %s: %w", key.Hex, err)
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil || e.Digest.Hex == "" {
		s.drop(ctx, key, v1.Hash{}, "unreadable entry")
		return nil, ErrNotFound
	}
	if err := verify(s.blobPath(e.Digest), e.Descriptor); err != nil {
		s.drop(ctx, key, e.Digest, err.Error())
		return nil, ErrNotFound
	}
	now := time.Now()
	// The key file's mtime records the last use, for Prune.
	_ = os.Chtimes(s.keyPath(key), now, now)
	return layers.FromCompressedFile(s.blobPath(e.Digest), e.Descriptor), nil
}

// Put builds the layer for key with build, which writes an uncompressed tar,
// stores it and returns it. If build fails, nothing is stored.
func (s *Store) Put(ctx context.Context, key v1.Hash, name string, build func(io.Writer) error) (v1.Layer, error) {
	tmp, err := os.CreateTemp(s.tmpDir(), "blob-*")
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	desc, err := layers.Compress(tmp, build)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), s.blobPath(desc.Digest)); err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	b, err := json.Marshal(entry{Descriptor: desc, Name: name})
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(s.keyPath(key), b); err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	return layers.FromCompressedFile(s.blobPath(desc.Digest), desc), nil
}

func (s *Store) drop(ctx context.Context, key, digest v1.Hash, why string) {
	slog.WarnContext(ctx, "dropping corrupt cache entry; it will be rebuilt", "key", key.Hex, "reason", why)
	os.Remove(s.keyPath(key))
	if digest.Hex != "" {
		os.Remove(s.blobPath(digest))
	}
}

func verify(path string, d layers.Descriptor) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("blob %s is %d bytes, want %d", d.Digest.Hex, n, d.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("blob %s hashes to %s", d.Digest.Hex, got)
	}
	return nil
}
