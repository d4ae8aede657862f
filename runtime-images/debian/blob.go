package debian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/step"
)

// blob is a file whose size and SHA256 are known before it is fetched.
type blob struct {
	what   string // for errors: "tzdata 2024a-0+deb12u1"
	url    string
	size   int64
	sha256 string
	ext    string // file name suffix in the cache: ".deb"
}

// fetchBlob returns the path of b in the cache, an entry of kind
// cache.DebianFiles, downloading it if it is missing. The store hashes a
// cached file again before use, and fetches anew one that does not match;
// a download that does not match leaves nothing behind.
func (f *Fetcher) fetchBlob(ctx context.Context, b blob) (string, error) {
	if len(b.sha256) != sha256.Size*2 {
		return "", fmt.Errorf("%s: sha256 %q is not 64 hex digits", b.what, b.sha256)
	}
	if _, err := hex.DecodeString(b.sha256); err != nil {
		return "", fmt.Errorf("%s: sha256 %q is not hex", b.what, b.sha256)
	}
	l, err := f.store.File(ctx, cache.DebianFiles, b.sha256+b.ext, cache.SHA256(b.sha256, b.size), func(path string) error {
		s := step.Start(ctx, "download "+b.what)
		s.SetTotal(b.size)
		err := f.get(ctx, b.url, func(r io.Reader) error {
			// Truncated first: a retry starts afresh.
			file, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			// One byte more than expected shows an oversized body.
			_, err = io.Copy(s.Writer(file), io.LimitReader(r, b.size+1))
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			return err
		})
		s.End(err)
		return err
	})
	var de *cache.DigestError
	if errors.As(err, &de) {
		got := describe(de.Got.Size, de.Got.Hex)
		if de.Got.Size > b.size {
			got = fmt.Sprintf("more than %d bytes", b.size)
		}
		err = &ChecksumError{What: b.what, URL: b.url, Want: describe(b.size, b.sha256), Got: got}
	}
	if err != nil {
		return "", fmt.Errorf("fetching %s: %w", b.what, err)
	}
	l.Close()
	return l.Path, nil
}

func describe(size int64, sum string) string {
	return fmt.Sprintf("%d bytes, sha256 %s", size, sum)
}
