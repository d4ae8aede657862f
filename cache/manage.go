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
