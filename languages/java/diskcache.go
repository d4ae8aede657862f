package java

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cached returns the directory kind/<key> under the pack's cache, making
// it with fill on a miss. fill writes into a fresh directory that is
// renamed into place only when it succeeds, so concurrent builds and
// interrupted ones never see half a result. With fn.NoCache the result is
// made afresh in the build's scratch folder, which leaves the cache as
// it is for builds that read it meanwhile.
func (b *build) cached(kind string, key v1.Hash, fill func(dir string) error) (string, error) {
	if b.fn.NoCache {
		dir, err := os.MkdirTemp(b.fn.ScratchDir, kind+"-")
		if err != nil {
			return "", fmt.Errorf("making the java scratch folder: %w", err)
		}
		return dir, fill(dir)
	}
	dir := filepath.Join(b.cache, kind, key.Hex)
	if isDir(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("making the java cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("making the java cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := fill(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !isDir(dir) {
		return "", fmt.Errorf("filling the java cache: %w", err)
	}
	return dir, nil
}
