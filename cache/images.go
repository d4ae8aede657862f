package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/flock"
)

// The local image store is an OCI image layout (images/), written by
// go-containerregistry's layout package: blobs first, then index.json,
// which names each image. Replacing an image under its name (every
// `kiln build` of a tag) leaves the old image's blobs behind, reachable
// from nothing: that is what grows. An image that index.json names is not
// a cache entry but the output of a build, which `kiln run NAME` and
// `kiln up` look up, and which nothing would make again on a miss.
//
// So Prune removes, of the layout, only the blobs that nothing in
// index.json reaches, last written before the cutoff and more than grace
// ago. The layout stays valid: index.json and every blob it reaches are
// untouched. Writers (builder.Layout) hold a shared lock on the directory
// while they write, and Prune takes it exclusively, or skips the layout
// while a build writes to it: a writer finds a blob that exists already
// and does not write it again, so without the lock a blob Prune judged
// unreachable could be what a new image names a moment later. The images
// themselves are removed only by Clear (`kiln cache prune --all`).

// LockImages takes a shared lock on the OCI layout at dir (created if
// missing) for as long as a writer adds to it, so that Prune removes
// nothing it is about to name. Close it when done.
func LockImages(dir string) (io.Closer, error) {
	for range 5 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("locking image layout %s: %w", dir, err)
		}
		l, err := flock.Shared(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("locking image layout %s: %w", dir, err)
		}
		// A Clear that held the lock may have removed the folder meanwhile:
		// a lock on it would keep no later Prune off the new one.
		held, herr := l.File().Stat()
		now, nerr := os.Stat(dir)
		if herr == nil && nerr == nil && os.SameFile(held, now) {
			return l, nil
		}
		l.Close()
	}
	return nil, fmt.Errorf("locking image layout %s: it keeps being removed", dir)
}

// images returns how many images the local store names, and when their
// manifests were written.
func (s *Store) images() (int, []time.Time) {
	m, err := readIndex(filepath.Join(s.kindDir(Images), "index.json"))
	if err != nil {
		return 0, nil
	}
	var times []time.Time
	for _, d := range m.Manifests {
		if fi, err := os.Stat(blobPath(s.kindDir(Images), d.Digest)); err == nil {
			times = append(times, fi.ModTime())
		}
	}
	return len(m.Manifests), times
}

func blobPath(layout string, h v1.Hash) string {
	return filepath.Join(layout, "blobs", h.Algorithm, h.Hex)
}

func readIndex(path string) (*v1.IndexManifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return v1.ParseIndexManifest(bytes.NewReader(b))
}

// reachable returns the blobs that index.json of the layout reaches,
// through nested indexes and image manifests. A manifest it names that is
// missing or unreadable is an error: what else is garbage cannot be told.
func reachable(layout string) (map[v1.Hash]bool, error) {
	root, err := readIndex(filepath.Join(layout, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	seen := map[v1.Hash]bool{}
	queue := append([]v1.Descriptor(nil), root.Manifests...)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		switch {
		case d.MediaType.IsIndex():
			m, err := readIndex(blobPath(layout, d.Digest))
			if err != nil {
				return nil, fmt.Errorf("reading index %s: %w", d.Digest, err)
			}
			queue = append(queue, m.Manifests...)
		case d.MediaType.IsImage():
			b, err := os.ReadFile(blobPath(layout, d.Digest))
			if err != nil {
				return nil, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
			}
			m, err := v1.ParseManifest(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
			}
			seen[m.Config.Digest] = true
			for _, l := range m.Layers {
				seen[l.Digest] = true
			}
		}
	}
	return seen, nil
}

// pruneImages removes the blobs of the local image store that no named
// image reaches, written before cutoff; with all, the whole store.
func (s *Store) pruneImages(ctx context.Context, cutoff time.Time, all bool) (KindUsage, error) {
	res := KindUsage{Kind: Images}
	dir := s.kindDir(Images)
	lock, err := flock.TryExclusive(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if errors.Is(err, flock.ErrBusy) {
		slog.InfoContext(ctx, "the local image store is being written to; pruning it next time", "dir", dir)
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("pruning %s: %w", dir, err)
	}
	defer lock.Close()
	if all {
		n, times := s.images()
		res.Entries = n
		for _, t := range times {
			res.used(t)
		}
		res.Bytes = du(dir)
		if err := s.discard(dir); err != nil {
			return res, fmt.Errorf("removing %s: %w", dir, err)
		}
		return res, nil
	}
	keep, err := reachable(dir)
	if err != nil {
		slog.WarnContext(ctx, "leaving the local image store as it is", "dir", dir, "reason", err)
		return res, nil
	}
	if limit := s.now().Add(-grace); limit.Before(cutoff) {
		cutoff = limit
	}
	algs, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("pruning %s: %w", dir, err)
	}
	for _, alg := range algs {
		blobs, err := os.ReadDir(filepath.Join(dir, "blobs", alg.Name()))
		if err != nil {
			continue
		}
		for _, b := range blobs {
			fi, err := b.Info()
			if err != nil || keep[v1.Hash{Algorithm: alg.Name(), Hex: b.Name()}] || !fi.ModTime().Before(cutoff) {
				continue
			}
			if os.Remove(filepath.Join(dir, "blobs", alg.Name(), b.Name())) == nil {
				res.Bytes += fi.Size()
			}
		}
	}
	return res, nil
}
