package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/internal/flock"
)

// Prune removes what was last used before cutoff, of every kind, and
// returns what it removed per kind:
//
//   - entries of Layers, JavaOutputs, NodeModules, NodeRuntimes,
//     GoModules, GoBuildCaches, DebianFiles, Toolchains, RootfsLayers,
//     Rootfs and MountCaches, unless a process holds them (a running
//     function holds its unpacked image, a RUN step its cache mounts);
//   - then the layer blobs no remaining key refers to;
//   - entries of RootfsLayers from earlier boots, whatever their age;
//   - of Images, the blobs no named image reaches (see LockImages);
//   - temporary files no process holds, and those of older versions
//     left before cutoff.
//
// Secrets and Other are left to Clear. Blobs and temporary files made in
// the last minute are kept whatever the cutoff, since their writer may not
// have named or locked them yet.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (Usage, error) {
	return s.prune(ctx, cutoff, false)
}

// Clear removes every entry of every kind, the local images and the
// secrets too, but for entries a process holds, and returns what it
// removed per kind.
func (s *Store) Clear(ctx context.Context) (Usage, error) {
	return s.prune(ctx, time.Time{}, true)
}

func (s *Store) prune(ctx context.Context, cutoff time.Time, all bool) (Usage, error) {
	var out Usage
	for _, k := range Kinds() {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		var u KindUsage
		var err error
		switch k {
		case Layers:
			u, err = s.pruneLayers(ctx, cutoff, all)
		case Images:
			u, err = s.pruneImages(ctx, cutoff, all)
		default:
			u, err = s.pruneItems(ctx, k, cutoff, all)
		}
		out = append(out, u)
		if err != nil {
			return out, fmt.Errorf("pruning %s: %w", k, err)
		}
	}
	return out, nil
}

func (s *Store) pruneItems(ctx context.Context, k Kind, cutoff time.Time, all bool) (KindUsage, error) {
	res := KindUsage{Kind: k}
	items, err := s.items(k)
	if err != nil {
		return res, err
	}
	for _, it := range items {
		if n, ok := s.remove(ctx, it, cutoff, all); ok {
			if it.entry {
				res.Entries++
				res.used(it.modTime)
			}
			res.Bytes += n
		}
	}
	if k.spec().volatile {
		// The folders of earlier boots, once empty.
		boot, _ := s.opts.bootID()
		des, _ := os.ReadDir(s.kindDir(k))
		for _, de := range des {
			if de.Name() != boot && de.IsDir() {
				os.Remove(filepath.Join(s.kindDir(k), de.Name()))
			}
		}
	}
	return res, nil
}

// due reports whether Prune removes it now, before it is locked.
func (s *Store) due(it item, cutoff time.Time, all bool) bool {
	if all {
		return true
	}
	now := s.now()
	switch it.rule {
	case byAge:
		return it.modTime.Before(cutoff)
	case unheld:
		return it.modTime.Before(now.Add(-grace))
	case legacyTemp:
		return it.modTime.Before(cutoff) && it.modTime.Before(now.Add(-legacyGrace))
	case earlierBoot:
		return true
	}
	return false
}

// remove removes it if due and no process holds it, and returns its size.
func (s *Store) remove(ctx context.Context, it item, cutoff time.Time, all bool) (int64, bool) {
	if !s.due(it, cutoff, all) {
		return 0, false
	}
	lock, err := flock.TryExclusive(it.path)
	switch {
	case errors.Is(err, flock.ErrBusy):
		slog.DebugContext(ctx, "keeping a cache entry in use", "path", it.path)
		return 0, false
	case errors.Is(err, fs.ErrNotExist):
		return 0, false
	case err == nil:
		defer lock.Close()
		held, err := lock.File().Stat()
		if err != nil {
			return 0, false
		}
		now, err := os.Lstat(it.path)
		if err != nil || !os.SameFile(held, now) {
			return 0, false // replaced meanwhile: judge it next time
		}
		// Used between the listing and the lock?
		if it.rule == byAge && !all && !held.ModTime().Before(cutoff) {
			return 0, false
		}
	default:
		// Not a file kiln could have locked (a dangling symlink, another
		// user's tree): nobody holds it.
	}
	n := du(it.path)
	if err := s.discard(it.path); err != nil {
		slog.WarnContext(ctx, "cannot remove a cache entry", "path", it.path, "err", err)
		return 0, false
	}
	return n, true
}

// pruneLayers removes the key files last used before cutoff, then the
// blobs no remaining key refers to.
func (s *Store) pruneLayers(ctx context.Context, cutoff time.Time, all bool) (KindUsage, error) {
	res := KindUsage{Kind: Layers}
	items, err := s.items(Layers)
	if err != nil {
		return res, err
	}
	live := map[string]bool{}
	for _, it := range items {
		if !it.entry {
			if n, ok := s.remove(ctx, it, cutoff, all); ok {
				res.Bytes += n
			}
			continue
		}
		if all || it.modTime.Before(cutoff) {
			fi, err := os.Stat(it.path)
			if err == nil && os.Remove(it.path) == nil {
				res.Entries++
				res.Bytes += fi.Size()
				res.used(it.modTime)
			}
			continue
		}
		b, err := os.ReadFile(it.path)
		if err != nil {
			continue
		}
		var e entry
		if json.Unmarshal(b, &e) == nil {
			live[e.Digest.Hex] = true
		}
	}
	blobs, err := os.ReadDir(s.blobsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	fresh := s.now().Add(-grace)
	for _, b := range blobs {
		if live[b.Name()] {
			continue
		}
		fi, err := b.Info()
		if err != nil || (!all && !fi.ModTime().Before(fresh)) {
			continue
		}
		if os.Remove(filepath.Join(s.blobsDir(), b.Name())) == nil {
			res.Bytes += fi.Size()
		}
	}
	return res, nil
}
