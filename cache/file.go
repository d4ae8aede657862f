package cache

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	"github.com/kiln-build/kiln/internal/flock"
)

// Digest is what the content of a file entry must hash to.
type Digest struct {
	// Algorithm is "sha256" or "sha512".
	Algorithm string
	// Hex is the digest, in lower-case hex.
	Hex string
	// Size is the length in bytes; a negative size is not checked.
	Size int64
}

// SHA256 returns the digest of size bytes that hash to hex under SHA-256.
func SHA256(hex string, size int64) Digest { return Digest{Algorithm: "sha256", Hex: hex, Size: size} }

// SHA512 returns the digest of content of any size that hashes to hex
// under SHA-512.
func SHA512(hex string) Digest { return Digest{Algorithm: "sha512", Hex: hex, Size: -1} }

func (d Digest) String() string {
	if d.Size < 0 {
		return d.Algorithm + ":" + d.Hex
	}
	return fmt.Sprintf("%s:%s (%d bytes)", d.Algorithm, d.Hex, d.Size)
}

func (d Digest) hasher() (hash.Hash, error) {
	var h hash.Hash
	switch d.Algorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("digest algorithm %q: want sha256 or sha512", d.Algorithm)
	}
	if b, err := hex.DecodeString(d.Hex); err != nil || len(b) != h.Size() {
		return nil, fmt.Errorf("%s digest %q is not %d hex digits", d.Algorithm, d.Hex, 2*h.Size())
	}
	return h, nil
}

// DigestError is content that File's fill wrote which does not match the
// digest asked for. Nothing is kept in the store when it happens.
type DigestError struct {
	Want, Got Digest
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("content is %s, want %s", e.Got, e.Want)
}

// File returns the file entry key of kind k, whose content is want,
// holding it until the lease is closed. The content is hashed again on
// every call; a file that does not match is removed and made anew. On a
// miss fill writes the content to path, an empty file in the store's
// temporary folder, which it may truncate and rewrite (to retry a
// download) but must not replace; the file is then hashed, synced and
// renamed into place, or removed and a *DigestError returned if it is not
// want.
func (s *Store) File(ctx context.Context, k Kind, key string, want Digest, fill func(path string) error) (*Lease, error) {
	if k.spec().shape != shapeFile {
		return nil, fmt.Errorf("cache: %s entries are not files", k)
	}
	if _, err := want.hasher(); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", key, err)
	}
	path, err := s.entryPath(k, key)
	if err != nil {
		return nil, err
	}
	for range 5 {
		lock, err := hold(path, false)
		switch {
		case err == nil:
			got, err := digestOf(lock.File(), want)
			if err == nil && got == want {
				s.touch(path)
				return &Lease{Path: path, lock: lock}, nil
			}
			lock.Close()
			why := fmt.Sprintf("content is %s", got)
			if err != nil {
				why = err.Error()
			}
			s.drop(ctx, k, path, why)
		case errors.Is(err, errStale):
			continue
		case errors.Is(err, errWrongType):
			s.drop(ctx, k, path, "not a regular file")
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("reading cache entry %s: %w", path, err)
		}
		return s.fillFile(k, path, want, fill)
	}
	return nil, fmt.Errorf("reading cache entry %s: it keeps being removed", path)
}

func (s *Store) fillFile(k Kind, path string, want Digest, fill func(path string) error) (*Lease, error) {
	if err := s.makeParent(k, path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("making the cache's temporary folder: %w", err)
	}
	f, err := os.CreateTemp(s.tmpDir(), k.String()+"-")
	if err != nil {
		return nil, fmt.Errorf("making a temporary file in the cache: %w", err)
	}
	tmp := f.Name()
	f.Close()
	lock, err := flock.Shared(tmp)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			lock.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(tmp); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(tmp); err != nil || !os.SameFile(fi, mustStat(lock.File())) {
		return nil, fmt.Errorf("filling cache entry %s: the fill replaced its file", path)
	}
	got, err := digestOf(lock.File(), want)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tmp, err)
	}
	if got != want {
		return nil, &DigestError{Want: want, Got: got}
	}
	// fsync on a read-only descriptor flushes the file all the same.
	if err := lock.File().Sync(); err != nil {
		return nil, fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if !k.spec().private {
		if err := os.Chmod(tmp, 0o644); err != nil {
			return nil, err
		}
	}
	// A concurrent writer of the same key has written the same bytes:
	// replacing its file is harmless.
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("moving cache entry into place: %w", err)
	}
	keep = true
	s.touch(path)
	return &Lease{Path: path, lock: lock}, nil
}

func mustStat(f *os.File) fs.FileInfo {
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	return fi
}

// digestOf hashes f from its start with want's algorithm. The size is
// always reported; a negative want.Size is copied, so that the result
// compares equal on a matching hash.
func digestOf(f *os.File, want Digest) (Digest, error) {
	h, err := want.hasher()
	if err != nil {
		return Digest{}, err
	}
	n, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return Digest{}, err
	}
	got := Digest{Algorithm: want.Algorithm, Hex: hex.EncodeToString(h.Sum(nil)), Size: n}
	if want.Size < 0 && got.Hex == want.Hex {
		got.Size = want.Size
	}
	return got, nil
}
