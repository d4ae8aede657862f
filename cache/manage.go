package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Entry describes one cached layer.
type Entry struct {
	Key      v1.Hash   `json:"key"`
	Name     string    `json:"name"`
	Digest   v1.Hash   `json:"digest"`
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"lastUsed"`
}

// List returns the entries, most recently used first.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	des, err := os.ReadDir(s.keysDir())
	if err != nil {
		return nil, fmt.Errorf("listing cache: %w", err)
	}
	var out []Entry
	for _, de := range des {
		hexKey, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.keysDir(), de.Name()))
		if err != nil {
			continue
		}
		var e entry
		if json.Unmarshal(b, &e) != nil {
			continue
		}
		out = append(out, Entry{
			Key:      v1.Hash{Algorithm: "sha256", Hex: hexKey},
			Name:     e.Name,
			Digest:   e.Digest,
			Size:     e.Size,
			LastUsed: info.ModTime(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// Prune removes the entries last used before cutoff, then the blobs no
// remaining entry refers to, and temporary files left by processes that
// died. A cutoff of time.Now() empties the cache.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (PruneResult, error) {
	var res PruneResult
	entries, err := s.List(ctx)
	if err != nil {
		return res, err
	}
	live := map[string]bool{}
	for _, e := range entries {
		if e.LastUsed.Before(cutoff) {
			if os.Remove(s.keyPath(e.Key)) == nil {
				res.Entries++
			}
			continue
		}
		live[e.Digest.Hex] = true
	}
	blobs, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return res, fmt.Errorf("pruning cache: %w", err)
	}
	for _, b := range blobs {
		if live[b.Name()] {
			continue
		}
		info, err := b.Info()
		if err != nil {
			continue
		}
		if os.Remove(filepath.Join(s.blobsDir(), b.Name())) == nil {
			res.Bytes += info.Size()
		}
	}
	// A temporary file older than an hour belongs to a process that died.
	tmps, _ := os.ReadDir(s.tmpDir())
	for _, t := range tmps {
		if info, err := t.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(s.tmpDir(), t.Name()))
		}
	}
	return res, nil
}

// DefaultDir returns where the cache lives when no directory is given:
// KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln. getenv is
// os.Getenv at the CLI edge.
func DefaultDir(getenv func(string) string) (string, error) {
	if d := getenv("KILN_CACHE_DIR"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kiln"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("finding the cache directory: none of KILN_CACHE_DIR, XDG_CACHE_HOME, HOME is set; pass --cache-dir")
	}
	return filepath.Join(home, ".cache", "kiln"), nil
}
