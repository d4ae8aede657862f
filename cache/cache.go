package cache

import (
	"compress/gzip"
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

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/layers"
)

// ErrNotFound is returned by Get when the store has no valid entry for a key.
var ErrNotFound = errors.New("not in the cache")

// entry is what a key file holds.
type entry struct {
	layers.Descriptor
	// Name is the step's name, shown by `kiln cache ls`.
	Name string `json:"name"`
	// Key is the key the entry is for (hex): a key file copied over
	// another names another key, and is not used.
	Key string `json:"key"`
}

func (s *Store) keysDir() string  { return filepath.Join(s.dir, "layers", "v1", "keys") }
func (s *Store) blobsDir() string { return filepath.Join(s.dir, "layers", "v1", "blobs", "sha256") }

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
		s.dropLayer(ctx, key, v1.Hash{}, "unreadable entry")
		return nil, ErrNotFound
	}
	if e.Key != key.Hex {
		// Its blob may be another entry's: keep it.
		s.dropLayer(ctx, key, v1.Hash{}, fmt.Sprintf("the entry is for key %q", e.Key))
		return nil, ErrNotFound
	}
	if err := verify(s.blobPath(e.Digest), e.Descriptor); err != nil {
		s.dropLayer(ctx, key, e.Digest, err.Error())
		return nil, ErrNotFound
	}
	// The key file's mtime records the last use, for Prune; the blob's
	// tells Prune that a key written meanwhile may refer to it.
	s.touch(s.keyPath(key))
	s.touch(s.blobPath(e.Digest))
	return layers.FromCompressedFile(s.blobPath(e.Digest), e.Descriptor), nil
}

// Put builds the layer for key with build, which writes an uncompressed tar,
// stores it and returns it. If build fails, nothing is stored. The blob and
// the key file are written in the temporary folder, synced, and renamed
// into place, the blob first: a key never names a blob that is not whole.
func (s *Store) Put(ctx context.Context, key v1.Hash, name string, build func(io.Writer) error) (v1.Layer, error) {
	dir, lock, err := s.tempDir("layer-")
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	defer func() {
		os.RemoveAll(dir)
		lock.Close()
	}()
	tmp, err := os.Create(filepath.Join(dir, "blob"))
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	desc, err := layers.Compress(tmp, build)
	if err == nil {
		// A build that returned while it was being cancelled may have
		// taken a shortcut: it is not stored.
		err = ctx.Err()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", name, err)
	}
	return s.commit(dir, tmp.Name(), key, name, desc)
}

// PutCompressed stores under key the gzip-compressed layer r reads, as it
// is, and returns it: a layer fetched from elsewhere (a cache repository)
// keeps the digest it had there. The bytes must match desc, their digest
// and size, and decompress to its diffID; if they do not, or r fails,
// nothing is stored.
func (s *Store) PutCompressed(ctx context.Context, key v1.Hash, name string, desc layers.Descriptor, r io.Reader) (v1.Layer, error) {
	dir, lock, err := s.tempDir("layer-")
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	defer func() {
		os.RemoveAll(dir)
		lock.Close()
	}()
	path := filepath.Join(dir, "blob")
	tmp, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = verify(path, desc)
	}
	if err == nil {
		err = verifyDiffID(path, desc.DiffID)
	}
	if err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	return s.commit(dir, path, key, name, desc)
}

// commit renames the whole, synced blob at tmp into place, then writes the
// key file naming it, in the temporary folder dir first: a key never names
// a blob that is not whole.
func (s *Store) commit(dir, tmp string, key v1.Hash, name string, desc layers.Descriptor) (v1.Layer, error) {
	if err := os.Rename(tmp, s.blobPath(desc.Digest)); err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	b, err := json.Marshal(entry{Descriptor: desc, Name: name, Key: key.Hex})
	if err != nil {
		return nil, err
	}
	if err := writeSynced(filepath.Join(dir, "key"), b); err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	if err := os.Rename(filepath.Join(dir, "key"), s.keyPath(key)); err != nil {
		return nil, fmt.Errorf("caching %s: %w", name, err)
	}
	s.touch(s.keyPath(key))
	s.touch(s.blobPath(desc.Digest))
	return layers.FromCompressedFile(s.blobPath(desc.Digest), desc), nil
}

func (s *Store) dropLayer(ctx context.Context, key, digest v1.Hash, why string) {
	slog.WarnContext(ctx, "dropping corrupt cache entry; it will be rebuilt", "key", key.Hex, "reason", why)
	os.Remove(s.keyPath(key))
	if digest.Hex != "" {
		os.Remove(s.blobPath(digest))
	}
}

func writeSynced(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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

// verifyDiffID checks that the gzip file at path decompresses to a tar
// whose sha256 is want.
func verifyDiffID(path string, want v1.Hash) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("blob is not gzip: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return fmt.Errorf("decompressing the blob: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return fmt.Errorf("blob decompresses to sha256:%s, want diffID %s", got, want)
	}
	return nil
}
