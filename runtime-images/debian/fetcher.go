package debian

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/kiln-build/kiln/cache"
)

// Fetcher reads indexes from a Debian mirror and downloads packages into a
// cache directory. It is safe for concurrent use.
type Fetcher struct {
	store *cache.Store
	opts  options
}

// NewFetcher returns a fetcher that keeps verified downloads in kiln's
// cache at cacheDir, as entries of kind cache.DebianFiles
// (cacheDir/debian/sha256).
func NewFetcher(cacheDir string, opts ...Option) (*Fetcher, error) {
	if cacheDir == "" {
		return nil, fmt.Errorf("creating a Debian fetcher: cache directory is empty")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("creating a Debian fetcher: %w", err)
		}
	}
	store, err := cache.Open(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("creating a Debian fetcher: %w", err)
	}
	return &Fetcher{store: store, opts: o}, nil
}

// archive returns the base URL of the archive that serves suite: the
// security mirror for "<codename>-security", the main mirror otherwise.
func (f *Fetcher) archive(suite string) string {
	if strings.HasSuffix(suite, "-security") {
		return f.opts.securityMirror
	}
	return f.opts.mirror
}

// Download returns the path of p's .deb in the cache, fetching it from the
// mirror that serves p.Suite when it is missing or corrupt. The file always
// has p.Size bytes and the SHA256 p.SHA256 — the values of a lock, not of
// the mirror; anything else is a *ChecksumError and is not kept.
func (f *Fetcher) Download(ctx context.Context, p Package) (string, error) {
	if p.Filename == "" || path.IsAbs(p.Filename) || path.Clean(p.Filename) != p.Filename || strings.HasPrefix(p.Filename, "../") {
		return "", fmt.Errorf("fetching %s: bad pool filename %q", p, p.Filename)
	}
	return f.fetchBlob(ctx, blob{
		what:   fmt.Sprintf("%s (%s)", p, p.Architecture),
		url:    f.archive(p.Suite) + "/" + p.Filename,
		size:   p.Size,
		sha256: strings.ToLower(p.SHA256),
		ext:    ".deb",
	})
}
