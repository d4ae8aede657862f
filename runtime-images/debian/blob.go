package debian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// blob is a file whose size and SHA256 are known before it is fetched.
type blob struct {
	what   string // for errors: "tzdata 2024a-0+deb12u1"
	url    string
	size   int64
	sha256 string
	ext    string // file name suffix in the cache: ".deb"
}

// fetchBlob returns the path of b in the cache, downloading it if it is
// missing. A cached file is verified again before use, and one that does
// not match is deleted and fetched anew. A download that does not match
// leaves nothing behind.
func (f *Fetcher) fetchBlob(ctx context.Context, b blob) (string, error) {
	if len(b.sha256) != sha256.Size*2 {
		return "", fmt.Errorf("%s: sha256 %q is not 64 hex digits", b.what, b.sha256)
	}
	if _, err := hex.DecodeString(b.sha256); err != nil {
		return "", fmt.Errorf("%s: sha256 %q is not hex", b.what, b.sha256)
	}
	dir := filepath.Join(f.cacheDir, "sha256")
	dst := filepath.Join(dir, b.sha256+b.ext)
	switch ok, err := verifyFile(dst, b.size, b.sha256); {
	case ok:
		return dst, nil
	case err == nil:
		// Present but corrupt: fetch again.
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("removing corrupt %s: %w", dst, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the package cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return "", fmt.Errorf("creating the package cache: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // a no-op once renamed
	}()
	err = f.get(ctx, b.url, func(r io.Reader) error {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tmp.Truncate(0); err != nil {
			return err
		}
		h := sha256.New()
		// One byte more than expected shows an oversized body.
		n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, b.size+1))
		if err != nil {
			return err
		}
		if n > b.size {
			return &ChecksumError{What: b.what, URL: b.url, Want: describe(b.size, b.sha256), Got: fmt.Sprintf("more than %d bytes", b.size)}
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != b.size || got != b.sha256 {
			return &ChecksumError{What: b.what, URL: b.url, Want: describe(b.size, b.sha256), Got: describe(n, got)}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fetching %s: %w", b.what, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("storing %s: %w", b.what, err)
	}
	return dst, nil
}

func describe(size int64, sum string) string {
	return fmt.Sprintf("%d bytes, sha256 %s", size, sum)
}

// verifyFile reports whether the file at path has the given size and
// SHA256. A missing file is an fs.ErrNotExist error; a mismatch is false
// with no error.
func verifyFile(path string, size int64, sum string) (bool, error) {
	file, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() || info.Size() != size {
		return false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}
